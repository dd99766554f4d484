"""``reconciler history``: what reconciler did, from the record store, oldest first."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from reconciler.cli import sync as sync_cli
from reconciler.core import since as since_filter
from reconciler.shell import records


def _text(entry: records.HistoryEntry) -> str:
    record = entry.record
    if isinstance(record, records.Run):
        line = (f"{entry.at}  run #{record.run_id}  {record.revision}  {record.trigger}  "
                f"{record.outcome}")
        if record.requested_by:
            line += f"  by {record.requested_by}"
        if record.error:
            line += f"\n      error: {record.error}"
        return line
    line = f"{entry.at}  {entry.kind:<10} {record.app_id}"
    details: tuple[tuple[str, str | None], ...] = (("reason", record.reason),)
    match record:
        case records.Change():
            line += f"  {record.action} ({record.purpose})  {record.outcome or 'in progress'}"
            if record.deployment_id:
                line += f"  deployment {record.deployment_id} -> version {record.version}"
        case records.Rollback():
            line += (f"  {record.from_version} -> {record.to_version}  {record.outcome}  "
                     f"({record.method})")
            details += (("stuck step", record.stuck_step), ("failure", record.failure))
        case records.Quarantine():
            line += f"  revision {record.revision}"
            if record.lifted_at:
                line += f"  lifted {record.lifted_at} by {record.lifted_by}"
    for name, value in details:
        if value:
            line += f"\n      {name}: {value}"
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
        entries = store.history(app_id=app_id, since=since_at)
    if output == "json":
        json.dump([e.as_json() for e in entries], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if not entries:
        click.echo("no history" + (f" for {app_id}" if app_id else ""))
    for entry in entries:
        click.echo(_text(entry))
