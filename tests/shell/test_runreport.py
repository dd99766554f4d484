"""What a run's log line says of its changes: bounded, the failures first."""

from __future__ import annotations

from reconciler.core import model
from reconciler.shell import runreport, steps


def test_a_run_logs_its_outcome_counts_and_a_few_changes_the_failed_first() -> None:
    results = tuple(
        steps.StepResult(app_id=f"/dirac/a{i:02}", action=model.Action.UPDATE,
                         outcome=model.Outcome.ROLLED_BACK if i in (7, 31) else
                         model.Outcome.SUCCEEDED)
        for i in range(40))
    report = runreport.RunReport(run_id=1, revision="r", trigger=model.Trigger.POLL,
                                 dry_run=False, plan=None, results=results, resumed=(),
                                 health={})
    logged = runreport.logged_changes(report)
    assert logged["outcomes"] == {"succeeded": 38, "rolled back": 2}
    assert len(logged["changes"]) == runreport.LOGGED_CHANGES
    assert logged["changes"][:3] == ["update /dirac/a07: rolled back",
                                     "update /dirac/a31: rolled back",
                                     "update /dirac/a00: succeeded"]
    assert logged["more_changes"] == 40 - runreport.LOGGED_CHANGES
