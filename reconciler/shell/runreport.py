"""How one run ended: its report, its outcome and the exit code ``sync``/``rollback`` give."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core import health, model
from reconciler.core import plan as planning
from reconciler.shell import steps


class ExitCode(enum.IntEnum):
    """What ``reconciler sync`` and ``rollback`` return; the worst that happened wins."""

    CONVERGED = 0
    ERROR = 1
    FAILED = 2
    ROLLED_BACK = 3
    QUARANTINED = 4
    WAITING = 5

    @property
    def meaning(self) -> str:
        return _EXIT_MEANINGS[self]


_EXIT_MEANINGS = {
    ExitCode.CONVERGED: "every planned change succeeded (or there was nothing to do)",
    ExitCode.ERROR: "nothing was applied: invalid desired state, Marathon unreachable or "
                    "refusing, bad arguments",
    ExitCode.FAILED: "a change failed and could not be rolled back, or timed out: needs a human",
    ExitCode.ROLLED_BACK: "a change failed and was rolled back; its revision is quarantined "
                          "for that app",
    ExitCode.QUARANTINED: "nothing failed, but apps were left out because their revision is "
                          "quarantined",
    ExitCode.WAITING: "nothing failed, but apps were held by a closed sync window "
                      "(reconciler windows; --override-window REASON applies them now)",
}


@dataclass(frozen=True)
class RunReport:
    run_id: int | None
    revision: str
    trigger: model.Trigger
    dry_run: bool
    plan: planning.Plan | None
    results: tuple[steps.StepResult, ...]
    resumed: tuple[steps.StepResult, ...]
    """Outcomes of deployments started by a crashed predecessor, waited for first."""
    health: Mapping[model.AppId, health.AppHealth]
    """Every desired app's health after the run; empty when the engine was told not to
    assess it (``EngineSettings.report_health``: the controller reads its live cache)."""
    error: str | None = None

    @property
    def outcome(self) -> model.Outcome:
        if self.error is not None:
            return model.Outcome.FAILED
        outcomes = {r.outcome for r in (*self.resumed, *self.results)}
        if outcomes & {model.Outcome.FAILED, model.Outcome.TIMED_OUT}:
            return model.Outcome.FAILED
        if model.Outcome.ROLLED_BACK in outcomes:
            return model.Outcome.ROLLED_BACK
        if self.dry_run:
            return model.Outcome.SKIPPED
        return model.Outcome.SUCCEEDED

    @property
    def changed_nothing(self) -> bool:
        """Nothing planned, applied, waited for or failed: a check, not a run (a dry run is
        kept: its plan is what was asked for). Apps left out (quarantined, prune disabled)
        do not make it a run: nothing changed, and their status says why."""
        return (self.error is None and not self.dry_run and not self.results
                and not self.resumed and self.plan is not None and not self.plan.steps)

    @property
    def quarantined(self) -> tuple[model.AppId, ...]:
        """Apps left out because their revision, or a dependency's, is quarantined."""
        if self.plan is None:
            return ()
        held = (planning.SkipReason.QUARANTINED, planning.SkipReason.DEPENDENCY_QUARANTINED)
        return tuple(s.app_id for s in self.plan.skipped if s.reason in held)

    @property
    def waiting(self) -> tuple[model.AppId, ...]:
        """Apps planned but held by a closed sync window."""
        if self.plan is None:
            return ()
        return tuple(s.app_id for s in self.plan.skipped
                     if s.reason is planning.SkipReason.OUTSIDE_WINDOW)

    @property
    def exit_code(self) -> ExitCode:
        if self.error is not None:
            return ExitCode.ERROR
        outcome = self.outcome
        if outcome is model.Outcome.FAILED:
            return ExitCode.FAILED
        if outcome is model.Outcome.ROLLED_BACK:
            return ExitCode.ROLLED_BACK
        if self.quarantined:
            return ExitCode.QUARANTINED
        if self.waiting:
            return ExitCode.WAITING
        return ExitCode.CONVERGED


LOGGED_CHANGES = 20
"""Changes named in a run's log line at most: the rest are counted."""


def outcome_counts(report: RunReport) -> dict[str, int]:
    """How many changes (resumed ones included) ended each way."""
    counts: dict[str, int] = {}
    for result in (*report.resumed, *report.results):
        counts[str(result.outcome)] = counts.get(str(result.outcome), 0) + 1
    return counts


def logged_changes(report: RunReport) -> dict[str, Any]:
    """What a run's log line says of its changes: the count of each outcome, and at most
    :data:`LOGGED_CHANGES` of them, those that did not succeed first (a release of 10,000
    apps wrote a line of 10,000 entries, where on-call looks for the few that failed)."""
    ordered = sorted(report.results, key=lambda r: r.outcome is model.Outcome.SUCCEEDED)
    return {"outcomes": outcome_counts(report),
            "changes": [f"{r.action} {r.app_id}: {r.outcome}"
                        for r in ordered[:LOGGED_CHANGES]],
            "more_changes": max(0, len(ordered) - LOGGED_CHANGES)}


def summary(report: RunReport) -> dict[str, Any]:
    plan = report.plan
    return {
        "outcomes": outcome_counts(report),
        "planned": [{"app": s.app_id, "action": str(s.action),
                     "deadline": s.deadline.seconds} for s in plan.steps] if plan else [],
        "skipped": [{"app": s.app_id, "action": str(s.action), "reason": str(s.reason),
                     "detail": s.detail} for s in plan.skipped] if plan else [],
        "in_sync": list(plan.in_sync) if plan else [],
    }
