"""``reconciler status``: each app's state, sync and health, since when and why, from the
record store and live Marathon (the one status model the dashboard shows too)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import click

from reconciler.cli import _output
from reconciler.cli import sync as sync_cli
from reconciler.core import model, status
from reconciler.shell import config, embedded, marathon, readmodel


class StatusExit(enum.IntEnum):
    """The worst state of any app decides; scripts and monitoring read this."""

    ALL_IN_SYNC = 0
    ERROR = 1
    NOT_IN_SYNC = 2
    """Out of sync, drifted, progressing or blocked."""
    DEGRADED = 3
    """Degraded, missing, or unknown (Marathon could not be read)."""
    QUARANTINED = 4


_EXIT_OF = {
    model.AppState.IN_SYNC: StatusExit.ALL_IN_SYNC,
    model.AppState.OUT_OF_SYNC: StatusExit.NOT_IN_SYNC,
    model.AppState.DRIFTED: StatusExit.NOT_IN_SYNC,
    model.AppState.PROGRESSING: StatusExit.NOT_IN_SYNC,
    model.AppState.BLOCKED: StatusExit.NOT_IN_SYNC,
    model.AppState.UNKNOWN: StatusExit.DEGRADED,
    model.AppState.DEGRADED: StatusExit.DEGRADED,
    model.AppState.QUARANTINED: StatusExit.QUARANTINED,
}


@click.command(epilog="Exit codes: " + "; ".join(
    f"{c.value} {c.name.lower().replace('_', ' ')}" for c in StatusExit)
    + " (the worst app decides).")
@click.option("--marathon", "marathon_url", default=None, metavar="URL",
              help="Marathon base URL (or $RECONCILER_MARATHON_URL). Default, or `embedded`: "
                   "the dev cluster a `reconciler run` with this state dir started.")
@sync_cli.state_dir_option
@_output.output_option()
def command(marathon_url: str | None, state_dir: Path | None, output: str) -> None:
    """Show every app reconciler knows, most urgent first: its state (quarantined, degraded,
    blocked, unknown, progressing, drifted, out of sync, in sync), sync and health, since
    when, the revision and author behind it, and its conditions."""
    marathon_url = marathon_url or sync_cli.load_settings().marathon_url
    if marathon_url == config.EMBEDDED:
        marathon_url = embedded.embedded_url(state_dir or sync_cli.default_state_dir())
        if marathon_url is None:
            click.echo("no Marathon URL: pass --marathon or set RECONCILER_MARATHON_URL (no "
                       "embedded dev cluster runs with this state dir)", err=True)
            sys.exit(StatusExit.ERROR)
    live_error = None
    with sync_cli.open_store(state_dir, reading=True) as store, \
            sync_cli.open_client(marathon_url) as client:
        try:
            live: list[model.JSON] | None = client.list_apps(embed=marathon.LIVE_EMBED)
        except marathon.MarathonError as e:
            live, live_error = None, e.message
        rows = status.by_urgency(readmodel.app_rows(store, live))
    if live_error:
        click.echo(f"Marathon: {live_error} (live state unknown)", err=True)
    if output != "text":
        _output.structured([r.as_json() for r in rows], output)
    elif not rows:
        click.echo("no apps recorded yet: nothing was synced with this state dir")
    else:
        _print(rows)
    sys.exit(max((_EXIT_OF[r.state] for r in rows), default=StatusExit.ALL_IN_SYNC))


def _print(rows: list[status.AppStatus]) -> None:
    width = max(len(r.app_id) for r in rows)
    for r in rows:
        cause = r.cause
        line = (f"{r.app_id:<{width}}  {_output.state(r.state, width=12)} "
                f"{r.sync!s:<10} {r.health:<11} {r.healthy}/{r.instances}  "
                f"{r.image_tag or '-':<10} {(r.revision or '-')[:12]:<12}")
        if r.since:
            line += f"  since {r.since}"
        if cause is not None and r.state is not model.AppState.IN_SYNC:
            line += f"  revision {cause.revision[:12]}"
            if cause.author:
                line += f" by {cause.author}"
        click.echo(line)
        for condition in r.conditions:
            click.echo(f"{'':<{width}}  {condition.type}: {condition.message}")
