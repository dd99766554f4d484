"""``reconciler rollback``: put one app back to an earlier definition, recorded like any change."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from reconciler.cli import sync as sync_cli
from reconciler.core import model
from reconciler.shell import engine


@click.command(epilog="\b\nExit codes:\n" + sync_cli.EXIT_CODES_HELP)
@sync_cli.marathon_option
@click.argument("app")
@click.option("--to", "to_revision", metavar="GIT_REVISION",
              help="A revision reconciler has seen (a commit sha, or dir:<digest> for a plain "
                   "folder; a unique prefix is enough): its desired definition of APP, as "
                   "recorded when that revision was synced, is applied.")
@click.option("--to-version", metavar="MARATHON_VERSION",
              help="A version from GET /v2/apps/APP/versions, re-applied as it is.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=None, metavar="S",
              help="Deadline in seconds for the rollback deployment.")
@sync_cli.state_dir_option
def command(
    marathon_url: str | None, app: str, to_revision: str | None, to_version: str | None,
    timeout: float | None, state_dir: Path | None,
) -> None:
    """Roll APP back: to the definition it had in an earlier revision (--to), to a Marathon
    version (--to-version), or, with neither, to the config version before the live one.

    The rollback is a deployment like any other: it is waited for (and undone if it fails),
    recorded with who asked, and the app's current desired revision is quarantined so that
    the next sync does not redeploy it; a new revision, or sync --retry-quarantined, lifts it.
    """
    if to_revision and to_version:
        raise click.UsageError("--to and --to-version exclude each other")
    app_id = app if app.startswith("/") else f"/{app}"
    with sync_cli.open_store(state_dir) as store, sync_cli.open_client(marathon_url) as client:
        to_state = None
        if to_revision is not None:
            revision = store.resolve_revision(to_revision)
            if revision is None:
                raise click.BadParameter(f"no recorded revision matches {to_revision!r}",
                                         param_hint="--to")
            definition = store.desired_definition(revision=revision, app_id=app_id)
            if definition is None:
                raise click.BadParameter(f"{app_id} is not part of revision {revision}",
                                         param_hint="--to")
            to_state = model.DesiredState(
                revision=revision,
                apps={app_id: model.DesiredApp(app_id=app_id, definition=definition,
                                               source_path=f"records:{revision}")},
                images={}, settings=model.RepoSettings())
        sync_engine = engine.Engine(client=client, records=store,
                                    settings=engine.EngineSettings(timeout=timeout))
        try:
            report = sync_engine.rollback_app(
                app_id, to_revision_state=to_state, to_version=to_version,
                requested_by=sync_cli.current_user(),
                on_progress=sync_cli.ProgressPrinter(sys.stdout, start=time.monotonic()))
        finally:
            sync_engine.close()
    sync_cli.print_report(report, sys.stdout)
    sys.exit(report.exit_code.value)
