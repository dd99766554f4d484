"""``reconciler status``: each app's state word, revision and last change, from the record
store and live Marathon (the same views the dashboard shows)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler.cli import sync as sync_cli
from reconciler.shell import config, engine, marathon
from reconciler.shell import controller as controlling
from reconciler.web import views


@click.command()
@click.option("--marathon", "marathon_url", default=None, metavar="URL",
              help="Marathon base URL (or $RECONCILER_MARATHON_URL). Default, or `embedded`: "
                   "the dev cluster a `reconciler run` with this state dir started.")
@sync_cli.state_dir_option
@click.option("--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def command(marathon_url: str | None, state_dir: Path | None, output: str) -> None:
    """Show every app reconciler knows: in sync, out of sync, drifted, progressing, degraded
    or quarantined, with the revision last applied and its last change."""
    marathon_url = marathon_url or sync_cli.load_settings().marathon_url
    if marathon_url == config.EMBEDDED:
        marathon_url = controlling.embedded_url(state_dir or sync_cli.default_state_dir())
        if marathon_url is None:
            click.echo("no Marathon URL: pass --marathon or set RECONCILER_MARATHON_URL (no "
                       "embedded dev cluster runs with this state dir)", err=True)
            sys.exit(1)
    with sync_cli.open_store(state_dir) as store, sync_cli.open_client(marathon_url) as client:
        try:
            live = client.list_apps(embed=engine.LIVE_EMBED)
        except marathon.MarathonError as e:
            click.echo(f"Marathon: {e.message}", err=True)
            sys.exit(1)
        rows = views.app_rows(store, live)
        last_change = {}
        for app_id in (r.app_id for r in rows):
            changes = store.changes(app_id=app_id)
            if changes:
                last = changes[-1]
                last_change[app_id] = f"{last.action} {last.outcome or 'running'} " \
                                      f"{last.finished_at or last.started_at}"
    if output == "json":
        click.echo(json.dumps([{**r.as_json(), "last_change": last_change.get(r.app_id)}
                               for r in rows], indent=2, default=str))
        return
    if not rows:
        click.echo("no apps recorded yet: nothing was synced with this state dir")
        return
    width = max(len(r.app_id) for r in rows)
    for r in rows:
        revision = (r.revision or "-")[:12]
        line = (f"{r.app_id:<{width}}  {r.state!s:<12} {revision:<12} "
                f"{r.healthy}/{r.instances} healthy  {r.image_tag or '-'}")
        if r.app_id in last_change:
            line += f"  last: {last_change[r.app_id]}"
        if r.quarantine:
            line += f"  ({r.quarantine})"
        click.echo(line)
