"""``reconciler history``: what reconciler did, from the record store, oldest first."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from reconciler.cli import sync as sync_cli
from reconciler.core import since as since_filter


def _plain(entry: Any) -> dict[str, Any]:
    is_record = dataclasses.is_dataclass(entry) and not isinstance(entry, type)
    data = dataclasses.asdict(entry) if is_record else dict(entry)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def _text(entry: dict[str, Any]) -> str:
    kind = entry.get("kind", "?")
    at = entry.get("at") or entry.get("started_at") or ""
    if kind == "run":
        line = (f"{at}  run #{entry.get('run_id')}  {entry.get('revision')}  "
                f"{entry.get('trigger')}  {entry.get('outcome')}")
        if entry.get("requested_by"):
            line += f"  by {entry['requested_by']}"
        if entry.get("error"):
            line += f"\n      error: {entry['error']}"
        return line
    line = f"{at}  {kind:<10} {entry.get('app_id', '')}"
    if kind == "change":
        line += (f"  {entry.get('action')} ({entry.get('purpose')})  "
                 f"{entry.get('outcome') or 'in progress'}")
        if entry.get("deployment_id"):
            line += f"  deployment {entry['deployment_id']} -> version {entry.get('version')}"
    elif kind == "rollback":
        line += (f"  {entry.get('from_version')} -> {entry.get('to_version')}  "
                 f"{entry.get('outcome')}  ({entry.get('method')})")
    elif kind == "quarantine":
        line += f"  revision {entry.get('revision')}"
        if entry.get("lifted_at"):
            line += f"  lifted {entry['lifted_at']} by {entry.get('lifted_by')}"
    for key in ("reason", "stuck_step", "failure"):
        if entry.get(key):
            line += f"\n      {key.replace('_', ' ')}: {entry[key]}"
    return line


@click.command()
@click.argument("app", required=False)
@click.option("--since", metavar="WHEN",
              help="Only entries since then: a duration (30m, 2h, 7d) or an ISO date/time.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@sync_cli.state_dir_option
def command(app: str | None, since: str | None, output: str, state_dir: Path | None) -> None:
    """Print the recorded sync runs, changes (with their Marathon deployment and outcome),
    rollbacks (why, Marathon's last task failure, the step it was stuck in) and quarantines,
    for every app or only APP. Nothing is ever truncated by default.
    """
    app_id = None if app is None else (app if app.startswith("/") else f"/{app}")
    try:
        since_at = since_filter.parse_since(since, now=time.time())
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--since") from None
    with sync_cli.open_store(state_dir) as store:
        entries = [_plain(e) for e in store.history(app_id=app_id, since=since_at)]
    if output == "json":
        json.dump(entries, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if not entries:
        click.echo("no history" + (f" for {app_id}" if app_id else ""))
    for entry in entries:
        click.echo(_text(entry))
