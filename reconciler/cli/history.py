"""``reconciler history``: what reconciler did, from the record store, newest first.

Only runs that did something (or failed) are history: checks that found nothing to do are
counted by the controller, not recorded. Each run's line says what it changed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from reconciler.cli import _output
from reconciler.cli import sync as sync_cli
from reconciler.core import since as since_filter
from reconciler.shell import records


def run_summary(run: records.Run) -> str:
    """What a run changed, in words: ``updated /a, scaled /b; /c skipped (quarantined)``."""
    try:
        summary = json.loads(run.summary) if run.summary else {}
    except ValueError:
        return ""
    done = [f"{p['action']} {p['app']}" for p in summary.get("planned", ())]
    left = [f"{s['app']} skipped ({s['reason']})" for s in summary.get("skipped", ())
            if s.get("reason") != "not selected"]
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(summary.get("outcomes", {}).items()))
    parts = [", ".join(done) if done else "no change"]
    if outcomes:
        parts.append(outcomes)
    if left:
        parts.append(", ".join(left))
    return "; ".join(parts)


def _text(entry: records.HistoryEntry) -> str:
    record = entry.record
    if isinstance(record, records.Run):
        line = (f"{entry.at}  run #{record.run_id}  {record.revision}  {record.trigger}  "
                f"{record.outcome or 'in progress'}")
        if record.requested_by:
            line += f"  by {record.requested_by}"
        summary = run_summary(record)
        if summary:
            line += f"\n      {summary}"
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
            fields = sorted({str(op.get("path")) for op in record.patch})
            if fields:
                details += (("changed", ", ".join(fields)),)
        case records.Rollback():
            line += (f"  {record.from_version} -> {record.to_version}  {record.outcome}  "
                     f"({record.method})")
            if record.requested_by:
                line += f"  by {record.requested_by}"
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
@click.option("--limit", type=click.IntRange(min=1, max=_output.LIMIT_MAX), default=None,
              metavar="N",
              help="Only the N newest entries (default: all).")
@_output.output_option()
@sync_cli.state_dir_option
def command(app: str | None, since: str | None, limit: int | None, output: str,
            state_dir: Path | None) -> None:
    """Print, newest first, the recorded sync runs (with what each changed), changes (with
    their Marathon deployment, fields and outcome), rollbacks (why, who, Marathon's last task
    failure, the step it was stuck in) and quarantines, for every app or only APP.

    Nothing is truncated unless --limit says so; checks that changed nothing are not runs
    and are not listed.
    """
    app_id = None if app is None else (app if app.startswith("/") else f"/{app}")
    try:
        since_at = since_filter.parse_since(since, now=time.time())
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--since") from None
    with sync_cli.open_store(state_dir, reading=True) as store:
        entries = list(reversed(store.history(app_id=app_id, since=since_at, limit=limit)))
    if output != "text":
        _output.structured([e.as_json() for e in entries], output)
        return
    if not entries:
        click.echo("no history" + (f" for {app_id}" if app_id else ""))
    for entry in entries:
        click.echo(_text(entry))
