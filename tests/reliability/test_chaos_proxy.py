"""A sync of many apps through a proxy that spoils Marathon's answers, until it converges.

``reconciler sync`` runs through :mod:`faultproxy` (5xx, resets, hangs, truncated and
wrong-shaped JSON, slowness; seeded) again and again, as an operator or the controller's
next poll would, until the dev cluster, read directly, equals the repo. Every run must end
with a report, not a traceback; the dev cluster's versions count the deployments (each app
created once); the records must hold a successful change for every app (the writes whose
answer was lost are settled from their intents by the next run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.devcluster import launch
from reconciler.shell import records
from tests.reliability import faultproxy, tally
from tests.sync import cluster

pytestmark = pytest.mark.integration

APPS = tally.pick(6, 50)
RATE = 0.25
MAX_RUNS = tally.pick(12, 30)


def test_a_sync_through_a_faulty_proxy_converges_without_duplicates_or_lost_records(
        devcluster: launch.RunningCluster, tmp_path: Path) -> None:
    app_ids = [f"/dirac/proxied/app{i:02d}" for i in range(APPS)]
    repo = cluster.write_repo(tmp_path / "repo", [
        cluster.fast_app(a, grace=1, healthChecks=[]) for a in app_ids], tag="v1")
    state = tmp_path / "state"
    os.environ.setdefault("RECONCILER_MARATHON_TIMEOUT", "2")
    outputs: list[str] = []
    proxy = faultproxy.FaultProxy(upstream=devcluster.url, rate=RATE, seed=1129)
    with faultproxy.serving(proxy):
        for _ in range(MAX_RUNS):
            result = cluster.reconciler(
                "sync", "--marathon", proxy.url, str(repo), "--state-dir", str(state),
                "--parallel", "8", "--timeout", "60", timeout=600)
            outputs.append(result.stdout + result.stderr)
            diff = cluster.reconciler("diff", "--marathon", devcluster.url, str(repo),
                                      "--exit-code")
            if diff.returncode == 0 and not cluster.deployments(devcluster.url) \
                    and set(proxy.injected) == set(faultproxy.KINDS):
                break
    converged = diff.returncode == 0
    # One more run without faults settles what the last faulty one left in doubt.
    settle = cluster.sync(devcluster.url, repo, state)
    outputs.append(settle.stdout + settle.stderr)
    crashed = sum(1 for o in outputs if "Traceback" in o)
    live = cluster.apps(devcluster.url)
    duplicates = sum(max(0, len(cluster.versions(devcluster.url, a)) - 1)
                     for a in app_ids if a in live)
    store = records.open_store(state)
    try:
        applied = store.last_applied()
        lost = sum(1 for a in app_ids if a not in applied)
        lost += sum(1 for r in store.runs() if r.outcome is None)
    finally:
        store.close()
    injected = sum(proxy.injected.values())
    ok = converged and not crashed
    tally.record(tally.Row(
        case=f"faulty proxy during a {APPS}-app sync ({len(outputs)} runs)",
        tried=injected, survived=injected if ok else 0, records_lost=lost,
        duplicate_deployments=duplicates))
    assert not crashed, next(o for o in outputs if "Traceback" in o)
    assert converged, outputs[-2:]
    assert duplicates == 0
    assert lost == 0, sorted(set(app_ids) - set(applied))
    assert set(proxy.injected) == set(faultproxy.KINDS), proxy.injected
