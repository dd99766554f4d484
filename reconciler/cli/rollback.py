"""``reconciler rollback``: put one app back to an earlier definition, recorded like any change.

It says what it will do first (the target version, image and revision), then asks: on a
terminal it waits for a yes; in a script it needs ``--yes`` and refuses otherwise, so that a
rollback is never started by a pipe nobody reads. ``--dry-run`` stops after saying.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any

import click

from reconciler.cli import _output
from reconciler.cli import sync as sync_cli
from reconciler.core import model
from reconciler.shell import engine, marathon, records


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
@click.option("--dry-run", is_flag=True, help="Say what would be rolled back, change nothing.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (needed when not on a terminal).")
@sync_cli.state_dir_option
@_output.output_option()
def command(
    marathon_url: str | None, app: str, to_revision: str | None, to_version: str | None,
    timeout: float | None, dry_run: bool, yes: bool, state_dir: Path | None, output: str,
) -> None:
    """Roll APP back: to the definition it had in an earlier revision (--to), to a Marathon
    version (--to-version), or, with neither, to the config version before the live one.

    The target (version, image, revision) is printed first; on a terminal you are asked to
    confirm (--yes skips that, and is required when not on a terminal). The rollback is a
    deployment like any other: it is waited for (and undone if it fails), recorded with who
    asked (your OS user name), and the app's current desired revision is quarantined so that
    the next sync does not redeploy it; a new revision, or sync --retry-quarantined, lifts it.
    """
    if to_revision and to_version:
        raise click.UsageError("--to and --to-version exclude each other")
    text = output == "text"
    out = sys.stdout if text else io.StringIO()
    app_id = app if app.startswith("/") else f"/{app}"
    who = sync_cli.current_user()
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
            try:
                live = client.get_app(app_id)
                target = sync_engine.rollback_target(app_id, to_revision_state=to_state,
                                                     to_version=to_version, live=live)
            except (marathon.MarathonError, ValueError) as e:
                message = e.message if isinstance(e, marathon.MarathonError) else str(e)
                click.echo(f"error: cannot find what to roll {app_id} back to: {message}",
                           err=True)
                sys.exit(1)
            plan = _target_json(target, live=live, store=store, who=who)
            _print_target(plan, out)
            if dry_run:
                if not text:
                    _output.structured({"target": plan, "dryRun": True, "report": None},
                                       output)
                else:
                    out.write("dry run: nothing changed\n")
                return
            if not yes:
                if not sys.stdin.isatty():
                    click.echo("error: refusing to roll back without confirmation: not on a "
                               "terminal; pass --yes to confirm in a script, or --dry-run to "
                               "only see the target", err=True)
                    sys.exit(1)
                if not click.confirm(f"Roll {app_id} back?", default=False, err=True):
                    click.echo("not rolled back", err=True)
                    sys.exit(1)
            report = sync_engine.rollback_app(
                app_id, to_revision_state=to_state,
                to_version=None if to_state is not None else target.version,
                requested_by=who,
                on_progress=sync_cli.ProgressPrinter(out, start=time.monotonic()))
        finally:
            sync_engine.close()
    if text:
        sync_cli.print_report(report, out, plan_printed=True)
    else:
        _output.structured({"target": plan, "dryRun": False,
                            "report": sync_cli.report_json(report)}, output)
    sys.exit(report.exit_code.value)


def _target_json(target: engine.RollbackTarget, *, live: model.JSON,
                 store: records.RecordStore, who: str | None) -> dict[str, Any]:
    """The target, with the revision that last applied that version when one did."""
    revision = target.revision
    if revision is None and target.version is not None:
        revision = next((c.revision for c in reversed(store.changes(app_id=target.app_id))
                         if c.version == target.version), None)
    live_image = ((live.get("container") or {}).get("docker") or {}).get("image")
    return {"app": target.app_id, "version": target.version, "image": target.image,
            "revision": revision, "liveVersion": live.get("version"), "liveImage": live_image,
            "requestedBy": who}


def _print_target(target: dict[str, Any], out: Any) -> None:
    out.write(f"rollback of {target['app']}\n"
              f"  from  version {target['liveVersion']}  image {target['liveImage']}\n"
              f"  to    version {target['version'] or '(as recorded in the revision)'}  "
              f"image {target['image']}  revision {target['revision'] or 'unknown'}\n"
              f"  by    {target['requestedBy'] or 'unknown'}\n")
    out.flush()
