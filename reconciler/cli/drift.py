"""``reconciler drift``: drift recorded by the controller, as text, JSON or a self-contained
HTML report (inline CSS, no external asset), read from the record store."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click

from reconciler.cli import _output
from reconciler.cli import sync as sync_cli
from reconciler.core import since as since_filter
from reconciler.shell import readmodel
from reconciler.web import report


@click.command()
@sync_cli.state_dir_option
@click.option("--open", "open_only", is_flag=True, help="Only open (and flapping) drift.")
@click.option("--since", default=None, metavar="WHEN",
              help="Only drift seen since then: 30m, 24h, 7d or an ISO-8601 time.")
@click.option("--prefix", default=None, metavar="GROUP", help="Only apps under this group.")
@_output.output_option("text", "json", "yaml", "html")
def command(state_dir: Path | None, open_only: bool, since: str | None, prefix: str | None,
            output: str) -> None:
    """Show drift: who changed what in Marathon behind Git's back, and what was done."""
    try:
        after = since_filter.parse_since(since, now=time.time())
    except ValueError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    with sync_cli.open_store(state_dir, reading=True) as store:
        found = store.drifts(open_only=open_only, since=after, prefix=prefix)
        if output == "html":
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            click.echo(report.store_report(store, generated_at=now, drifts=found))
            return
        shown = readmodel.drift_views(store, found)
    if output != "text":
        _output.structured([v.as_json() for v in shown], output)
        return
    if not shown:
        click.echo("no drift recorded" + (" (open)" if open_only else ""))
        return
    for view in shown:
        d = view.drift
        who = f"{d.client_ip} {d.uri}" if d.client_ip else "unknown client"
        click.echo(f"#{d.drift_id} {d.app_id}  {d.status}  {d.kind}  policy {d.policy}, "
                   f"action {d.action or '-'}  seen {d.first_seen_at} .. {d.last_seen_at}  "
                   f"by {who}  corrections {d.corrections}")
        ended = ", ".join(part for part in (
            f"by run #{d.run_id}" if d.run_id is not None else "",
            f"by the sync of {d.revision}" if d.revision else "", d.reason or "") if part)
        if ended:
            click.echo(f"    {d.action}: {ended}")
        for line in view.lines:
            click.echo(f"    {line.path}: live {line.live} -> desired {line.desired}")
        if d.suggested_ignore:
            click.echo("    correction stopped; to accept these changes, add to reconciler.yaml:")
            for rule in d.suggested_ignore.splitlines():
                click.echo(f"      {rule}")
