"""``reconciler sync``: apply a config repo folder to Marathon once, showing progress live.

Thin: it reads the folder, builds the Marathon client and the record store, and hands over
to :class:`reconciler.shell.engine.Engine`. The helpers for the state directory and the
client are shared with ``history`` and ``rollback``.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from reconciler.cli import _output
from reconciler.core import health, model
from reconciler.core import load as loading
from reconciler.core import plan as planning
from reconciler.core import windows as sync_windows
from reconciler.shell import config, directory, engine, marathon, records, runreport, steps

STATE_DIR_HELP = (
    "Where the record store lives (SQLite file inside). Default: $RECONCILER_STATE_DIR, else "
    "$XDG_STATE_HOME/reconciler, else ~/.local/state/reconciler."
)

EXIT_CODES_HELP = "\n".join(
    f"  {code.value}  {code.name.lower().replace('_', ' ')}: {code.meaning}"
    for code in runreport.ExitCode
)


def load_settings() -> config.Settings:
    """The host's configuration (``RECONCILER_*``, see :mod:`reconciler.shell.config`); a bad
    setting stops the command with exit code 1."""
    try:
        return config.load()
    except config.BadConfiguration as e:
        click.echo(f"configuration: {e}", err=True)
        sys.exit(1)


def default_state_dir() -> Path:
    return load_settings().state_dir


def state_dir_option(function: Any) -> Any:
    return click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
                        default=None, help=STATE_DIR_HELP)(function)


def marathon_option(function: Any) -> Any:
    return click.option(
        "--marathon", "marathon_url", default=None, metavar="URL",
        help="Marathon base URL; several separated by commas fail over in order "
             "(default: $RECONCILER_MARATHON_URL).")(function)


@contextmanager
def open_store(state_dir: Path | None, *, reading: bool = False
               ) -> Iterator[records.RecordStore]:
    """The record store of the state directory. ``reading``: a command that only reads
    (releases, history, drift, status) stops with exit code 1 when there is none, instead
    of creating an empty one where a typo pointed."""
    try:
        store = records.open_store(state_dir or default_state_dir(), existing=reading)
    except records.NoRecords as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def open_client(marathon_url: str | None) -> Iterator[marathon.MarathonClient]:
    """A client for ``marathon_url`` (else ``RECONCILER_MARATHON_URL``) with the host's
    ``RECONCILER_MARATHON_*`` credentials, TLS and timeout settings; a bad or missing setting
    stops the command with exit code 1."""
    try:
        settings = load_settings().client_settings(urls=marathon_url)
    except config.BadConfiguration as e:
        click.echo(f"error: cannot configure the Marathon client: {e}", err=True)
        sys.exit(1)
    client = marathon.MarathonClient(settings)
    try:
        yield client
    finally:
        client.close()


def load_desired(path: Path) -> model.DesiredState:
    """The desired state of the folder; revision = its content digest (``dir:...``)."""
    files, revision = directory.read_directory(path)
    return loading.load_desired_state(files, revision=revision)


class ProgressPrinter:
    """One line per app whenever what is shown for it changes (no repeated lines)."""

    def __init__(self, out: IO[str], *, start: float) -> None:
        self._out = out
        self._start = start
        self._last: dict[str, str] = {}

    def __call__(self, progress: steps.Progress) -> None:
        parts = [str(progress.outcome) if progress.outcome else str(progress.phase)]
        if progress.health is not None and progress.outcome is None:
            parts.append(f"{progress.health.healthy}/{progress.health.target} healthy")
            if progress.health.step is not None:
                parts.append(str(progress.health.step))
        if progress.message:
            parts.append(progress.message)
        line = "  ".join(parts)
        if self._last.get(progress.app_id) == line:
            return
        self._last[progress.app_id] = line
        elapsed = time.monotonic() - self._start
        self._out.write(f"[{elapsed:6.1f}s] {progress.app_id}  {line}\n")
        self._out.flush()


def print_plan(plan: planning.Plan, out: IO[str], *, future: bool = True) -> None:
    """The plan, before anything is applied: what changes (fields), what is left out, why."""
    counts: dict[str, int] = {}
    for step in plan.steps:
        counts[str(step.action)] = counts.get(str(step.action), 0) + 1
    actions = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "no changes"
    out.write(f"plan for {plan.revision}: {actions}; {len(plan.in_sync)} in sync\n")
    for skipped in plan.skipped:
        out.write(f"  skipped {skipped.app_id} ({skipped.action}): {skipped.text}\n")
    for step in plan.steps:
        verb = "will" if future else "would"
        out.write(f"  {verb} {step.action} {step.app_id} (deadline "
                  f"{step.deadline.seconds:.0f}s, {step.deadline.source})\n")
        for change in step.diff.changes[:_FIELDS_SHOWN]:
            out.write(f"      {change.path}: {_short(change.old)} -> {_short(change.new)}\n")
        if len(step.diff.changes) > _FIELDS_SHOWN:
            out.write(f"      ... {len(step.diff.changes) - _FIELDS_SHOWN} more field(s): "
                      "reconciler diff --full\n")
    out.flush()


_FIELDS_SHOWN = 8


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def plan_json(plan: planning.Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "revision": plan.revision,
        "steps": [{"app": s.app_id, "action": str(s.action), "deadline": s.deadline.seconds,
                   "dependsOn": list(s.depends_on),
                   "changes": [{"path": c.path, "old": c.old, "new": c.new}
                               for c in s.diff.changes]} for s in plan.steps],
        "skipped": [{"app": s.app_id, "action": str(s.action), "reason": str(s.reason),
                     "detail": s.detail} for s in plan.skipped],
        "inSync": list(plan.in_sync),
    }


def report_json(report: runreport.RunReport) -> dict[str, Any]:
    """A run's report for ``--output json|yaml``: the plan, each result, the exit code."""
    code = report.exit_code
    return {
        "runId": report.run_id, "revision": report.revision, "trigger": str(report.trigger),
        "dryRun": report.dry_run, "outcome": str(report.outcome), "error": report.error,
        "exitCode": code.value, "meaning": code.meaning, "plan": plan_json(report.plan),
        "results": [{"app": r.app_id, "action": str(r.action), "outcome": str(r.outcome),
                     "reason": r.reason, "deploymentId": r.deployment_id,
                     "version": r.version, "previousVersion": r.previous_version,
                     "rollback": None if r.rollback is None else {
                         "method": r.rollback.method, "from": r.rollback.from_version,
                         "to": r.rollback.to_version, "outcome": str(r.rollback.outcome)}}
                    for r in (*report.resumed, *report.results)],
        "health": {a: {"status": str(h.status), "summary": h.summary}
                   for a, h in report.health.items()},
    }


def print_report(report: runreport.RunReport, out: IO[str], *,
                 plan_printed: bool = False) -> None:
    plan = report.plan
    if plan is not None and not plan_printed:
        print_plan(plan, out, future=not report.dry_run)
    for result in (*report.resumed, *report.results):
        line = f"  {result.outcome}: {result.action} {result.app_id}"
        if result.reason:
            line += f": {result.reason}"
        out.write(line + "\n")
        for note in result.notes:  # e.g. a blocking deployment cancelled on request
            out.write(f"      {note}\n")
        if result.stuck_step:
            out.write(f"      stuck in {result.stuck_step}\n")
        if result.failure:
            out.write(f"      last task failure: {result.failure}\n")
        if result.rollback is not None:
            rb = result.rollback
            out.write(f"      rollback ({rb.method}) {rb.from_version} -> {rb.to_version}: "
                      f"{rb.outcome}\n")
    unhealthy = [h for h in report.health.values() if h.status is not health.HealthStatus.HEALTHY]
    for assessed in unhealthy:
        out.write(f"  {assessed.app_id}: {assessed.summary}\n")
    if report.error:
        out.write(f"error: {report.error}\n")
    code = report.exit_code
    if report.dry_run and report.error is None:
        pending = len(plan.steps) if plan is not None else 0
        out.write(f"dry run: {pending} change(s) would be applied, nothing changed\n")
        return
    out.write(f"{report.outcome}: {code.meaning} (exit {code.value})\n")


@click.command(epilog="\b\nExit codes:\n" + EXIT_CODES_HELP)
@marathon_option
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=".")
@click.option("--dry-run", is_flag=True, help="Plan and print, change nothing.")
@click.option("--app", "apps", multiple=True, metavar="ID",
              help="Only these app ids (repeatable).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=None, metavar="S",
              help="Deadline in seconds for every deployment, instead of the one derived from "
                   "its health checks, instances and upgrade strategy (or the repo settings').")
@click.option("--parallel", type=click.IntRange(min=1), default=8, show_default=True,
              help="Independent apps deployed at once.")
@click.option("--cancel-blocking", is_flag=True,
              help="Cancel deployments that lock an app (409) instead of waiting for them.")
@click.option("--retry-quarantined", is_flag=True,
              help="Try again apps whose revision was rolled back and quarantined.")
@click.option("--override-window", "override", metavar="REASON", default=None,
              help="Apply apps that a closed sync window holds, now; REASON is recorded in the "
                   "audit with who ran the command.")
@state_dir_option
@_output.output_option()
def command(
    marathon_url: str | None, path: Path, dry_run: bool, apps: tuple[str, ...],
    timeout: float | None, parallel: int, cancel_blocking: bool, retry_quarantined: bool,
    override: str | None, state_dir: Path | None, output: str,
) -> None:
    """Make Marathon equal to the app definitions under PATH (default: the current folder).

    Creates, updates (rolling upgrades), scales and, if the repo settings enable prune,
    deletes apps; waits for each deployment to become healthy within its deadline and rolls
    it back otherwise. A rolled-back app is quarantined for this revision (the folder's
    content digest): it is not tried again until the folder changes or --retry-quarantined.

    The plan (each change with its fields, each app left out with why) is printed before
    anything is applied; with --output json or yaml, one document at the end instead.

    Apps whose sync window (reconciler.yaml's windows) is closed are planned, not applied
    (exit 5), unless --override-window says why they must go now.
    """
    if override is not None:
        override = sync_windows.clean_reason(override)
        if not override:
            raise click.UsageError("--override-window needs a reason")
    text = output == "text"
    out = sys.stdout if text else io.StringIO()
    settings = engine.EngineSettings(parallel=parallel, timeout=timeout,
                                     cancel_blocking=cancel_blocking)
    with open_store(state_dir) as store, open_client(marathon_url) as client:
        sync_engine = engine.Engine(client=client, records=store, settings=settings)
        try:
            try:
                desired = load_desired(path)
            except (model.InvalidDesiredState, directory.UnreadableDirectory) as e:
                click.echo(str(e), err=True)
                report = sync_engine.record_failed_load(
                    revision=f"dir:{path}", error=e, trigger=model.Trigger.CLI)
                if not text:
                    _output.structured(report_json(report), output)
                sys.exit(report.exit_code.value)
            only = tuple(a if a.startswith("/") else f"/{a}" for a in apps) or None
            try:
                report = sync_engine.reconcile(
                    desired, trigger=model.Trigger.CLI, requested_by=current_user(),
                    dry_run=dry_run, only_apps=only, retry_quarantined=retry_quarantined,
                    window_override=override,
                    on_progress=ProgressPrinter(out, start=time.monotonic()),
                    on_plan=lambda plan: print_plan(plan, out, future=not dry_run))
            except records.StoreUnavailable as e:
                click.echo(f"error: {e}", err=True)
                sys.exit(1)
        finally:
            sync_engine.close()
    if text:
        print_report(report, out, plan_printed=report.plan is not None)
    else:
        _output.structured(report_json(report), output)
    sys.exit(report.exit_code.value)


def current_user() -> str | None:
    return config.operator()
