"""What the engine tells as each change ends (``on_step_finished``), on the dev cluster: the
controller forgets its own writes from it (``events.Attributions.forget_own``), so the
version it names must be the one Marathon shows. It is not a progress callback: with one,
the applier assesses each waiting app's health every interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core import model
from reconciler.shell import engine, marathon, records, steps
from testbed.apps import fast_app

pytestmark = pytest.mark.integration

APP = "/dirac/web/portal"


def test_a_change_that_ended_names_the_version_it_made(
    client: marathon.MarathonClient, tmp_path: Path,
) -> None:
    definition = {**fast_app(APP, grace=1),
                  "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"}}}
    desired = model.DesiredState(
        revision="r1", apps={APP: model.DesiredApp(app_id=APP, definition=definition,
                                                   source_path="dirac/web/portal.yaml")},
        images={}, settings=model.RepoSettings(managed_prefixes=("/dirac",)))
    store = records.open_store(tmp_path / "state")
    ended: list[steps.StepResult] = []
    runner = engine.Engine(client=client, records=store,
                           settings=engine.EngineSettings(report_health=False),
                           on_step_finished=ended.append)
    try:
        report = runner.reconcile(desired, trigger=model.Trigger.CLI)
    finally:
        runner.close()
        store.close()
    assert report.outcome is model.Outcome.SUCCEEDED, report
    assert report.health == {}  # not assessed: the controller reads health elsewhere
    assert [(r.app_id, r.outcome) for r in ended] == [(APP, model.Outcome.SUCCEEDED)]
    assert ended[0].version is not None
    assert ended[0].version == client.get_app(APP)["version"]
