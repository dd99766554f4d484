"""``reconciler windows``: the sync windows of a config repo, open now or when they open next."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import click

from reconciler.cli import _output
from reconciler.cli import sync as sync_cli
from reconciler.core import model
from reconciler.core import windows as sync_windows
from reconciler.shell import directory


def _at(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.fromtimestamp(time.time(), dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as e:
        raise click.BadParameter(f"{value!r}: expected an ISO time such as "
                                 "2026-12-04T18:30+01:00") from e
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def report(settings: model.RepoSettings, *, at: dt.datetime) -> dict[str, Any]:
    """Each window's state, and per group whether applying is allowed at ``at``."""
    groups = sorted({g for w in settings.windows for g in w.groups})
    return {
        "at": at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "groups": [{
            "group": group,
            **{str(scope): _verdict(sync_windows.decide(settings.windows, app_id=group,
                                                        scope=scope, at=at))
               for scope in model.WindowScope},
        } for group in groups],
        "windows": [{
            "kind": str(o.window.kind), "schedule": o.window.schedule,
            "duration": sync_windows.duration_text(o.window.duration),
            "timeZone": o.window.time_zone, "groups": list(o.window.groups),
            "for": sorted(str(s) for s in o.window.scopes), "openNow": o.open_now,
            "openUntil": _iso(o.current_end), "nextOpens": _iso(o.next_start),
            "nextCloses": _iso(o.next_end),
        } for o in sync_windows.openings(settings.windows, at=at)],
    }


def _verdict(verdict: sync_windows.Verdict) -> dict[str, Any]:
    return {"allowed": verdict.allowed, "until": _iso(verdict.until),
            "because": verdict.because or None}


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def print_text(data: dict[str, Any]) -> None:
    click.echo(f"sync windows at {data['at']}")
    if not data["windows"]:
        click.echo("  none: every app may be applied at any time")
        return
    for group in data["groups"]:
        parts = []
        for scope in model.WindowScope:
            verdict = group[str(scope)]
            parts.append(f"{scope}: " + ("allowed" if verdict["allowed"] else
                                         f"waiting until {verdict['until'] or 'no opening'}"))
        click.echo(f"  {group['group']}  " + "; ".join(parts))
    click.echo("windows:")
    for window in data["windows"]:
        state = (f"open until {window['openUntil']}" if window["openNow"]
                 else f"next opens {window['nextOpens'] or 'never'}")
        click.echo(f"  {window['kind']:<5} {window['schedule']!r} for {window['duration']} "
                   f"({window['timeZone']}) on {', '.join(window['groups'])} "
                   f"[{'+'.join(window['for'])}]: {state}")


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=".")
@click.option("--at", "at_text", default=None, metavar="TIME",
              help="Judge at this ISO time instead of now (2026-12-04T18:30+01:00).")
@_output.output_option()
def command(path: Path, at_text: str | None, output: str) -> None:
    """The sync windows of the config repo under PATH: per group, whether new revisions and
    drift corrections may be applied now (or until when they wait), and each window's
    current and next opening."""
    at = _at(at_text)
    try:
        desired = sync_cli.load_desired(path)
    except (model.InvalidDesiredState, directory.UnreadableDirectory) as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    data = report(desired.settings, at=at)
    if output == "text":
        print_text(data)
    else:
        _output.structured(data, output)
