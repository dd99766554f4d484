"""The registry watch inside ``reconciler run``: :func:`registry_watch.check_once` every
``RECONCILER_REGISTRY_INTERVAL``, with backoff after failures, its last error for ``/readyz``
and its counts for ``/metrics``.

Runs only when the controller follows a Git branch it can push to: a plain folder has no
remote, a tag or a commit sha cannot take a bump commit (checked once, at the first run:
``git ls-remote --heads``). A bump pushed to the followed branch asks the controller to poll
now (``on_bumped``), so the new tag rolls out within one registry check, not one registry
check plus one Git poll. Nothing here raises out of the job: a registry down, access refused
or a push refused is logged, counted, shown on ``/readyz`` and retried after a backoff.

While the desired state the controller last loaded has no image with an update policy (or
none was loaded yet), a check does nothing at all: no clone, no fetch, nothing on
``/readyz`` (a config repo that cannot be read is the poll's error, said once, there).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from reconciler.core import model
from reconciler.shell import (
    bumper,
    config,
    gitsource,
    registry,
    registry_watch,
    scheduler,
    telemetry,
)

log = logging.getLogger(__name__)

JOB = "registry"
_SHA = re.compile(r"[0-9a-f]{7,40}")


def applies_to(settings: config.Settings, source: gitsource.Source) -> bool:
    """A Git source on a ref that may name a branch (not a pattern, not a commit sha)."""
    ref = settings.repo_ref
    return (isinstance(source, gitsource.GitSource) and not _SHA.fullmatch(ref)
            and not any(c in ref for c in "*?["))


def has_policies(desired: model.DesiredState | None) -> bool:
    """True when ``desired`` (None: not loaded yet) has an image with an update policy."""
    return desired is not None and any(ref.update is not None
                                       for ref in desired.images.values())


class RegistryJob:
    """One registry check per call of :meth:`run`; the scheduler repeats it."""

    def __init__(self, settings: config.Settings, *,
                 on_bumped: Callable[[], None] = lambda: None,
                 leads: Callable[[], bool] = lambda: True,
                 has_policies: Callable[[], bool] = lambda: True,
                 session: registry.Session | None = None) -> None:
        self._settings = settings
        self._on_bumped = on_bumped
        self._leads = leads
        """Only the leader of several replicas watches the registry (one bump, not two)."""
        self._has_policies = has_policies
        """Whether the desired state last loaded names an image with an update policy."""
        self._session = session
        self._copy = bumper.working_copy(settings, settings.state_dir / "registry-watch")
        self._backoff = scheduler.Backoff(base=min(5.0, settings.registry_interval))
        self._lock = threading.Lock()
        self._error: str | None = None
        self._branch_checked = False
        self.disabled: str | None = None
        """Why the watch does not run (the ref is no branch), once found out."""
        self.last_outcomes: tuple[registry_watch.Outcome, ...] = ()

    @property
    def error(self) -> str | None:
        """Why the last check failed (for ``/readyz``), None after a good one."""
        with self._lock:
            return self._error

    def schedule(self, jobs: scheduler.Scheduler) -> None:
        jobs.every(JOB, self.run, seconds=self._settings.registry_interval)

    def run(self) -> None:
        if self.disabled is not None or self._backoff.waiting() or not self._leads():
            return
        if not self._has_policies():
            with self._lock:
                self._error = None  # the last policy went: so did its registry's error
            return
        try:
            if not self._branch_checked:
                if not self._copy.has_remote_branch(self._copy.branch):
                    self.disabled = f"{self._settings.repo_ref} is not a branch of the repo"
                    telemetry.event(log, "registry watch off", reason=self.disabled)
                    return
                self._branch_checked = True
            outcomes = registry_watch.check_once(
                self._copy, repo_path=self._settings.repo_path,
                credentials=self._credentials(), session=self._session)
        except (bumper.BumpError, registry.RegistryError) as e:
            kind = "registry" if isinstance(e, registry.RegistryError) else "config-repo"
            self._failed(kind, e.reason)
            return
        self.last_outcomes = outcomes
        failed = [o for o in outcomes if o.action is registry_watch.Action.FAILED]
        for outcome in outcomes:
            if outcome.action in (registry_watch.Action.BUMPED, registry_watch.Action.PROPOSED):
                telemetry.REGISTRY_BUMPS.labels(image=outcome.image,
                                                action=str(outcome.action)).inc()
                telemetry.event(log, "image bumped", image=outcome.image,
                                action=str(outcome.action), old=outcome.current,
                                new=outcome.newest, digest=outcome.digest,
                                commit=outcome.commit, branch=outcome.branch)
        if failed:
            self._failed("registry", "; ".join(f"{o.image}: {o.reason}" for o in failed))
        else:
            telemetry.REGISTRY_CHECKS.labels(result="ok").inc()
            self._backoff.succeeded()
            with self._lock:
                self._error = None
        if any(o.action is registry_watch.Action.BUMPED for o in outcomes):
            self._on_bumped()

    def _credentials(self) -> dict[str, registry.Credentials]:
        path = self._settings.registry_auth_file
        return registry.read_auth_file(path) if path is not None else {}

    def _failed(self, kind: str, reason: str) -> None:
        telemetry.REGISTRY_CHECKS.labels(result="failed").inc()
        telemetry.REGISTRY_ERRORS.labels(kind=kind).inc()
        delay = self._backoff.failed()
        with self._lock:
            self._error = reason
        telemetry.event(log, "registry watch failed", level=logging.WARNING, kind=kind,
                        reason=reason, retry_in=delay)
