"""Two replicas of ``reconciler run`` on a real ZooKeeper and a real PostgreSQL.

The leader is killed with ``kill -9`` in the middle of a rolling upgrade (a release whose
tasks take seconds to turn healthy): the other replica must lead, resume waiting on the
deployment its predecessor recorded and finish it, with one deployment only and every record
kept. ZooKeeper stopped: the leader must stop writing and say why in ``/readyz``, then carry
on when ZooKeeper is back. Throughout, the dev cluster's record of writers must show that no
two replicas ever wrote in overlapping terms.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
import yaml

from reconciler.devcluster import launch, writers
from reconciler.shell import records
from reconciler.shell.records import schema
from testbed import replicas, zookeeper
from testbed.gitrepos import Upstream
from tests.support import polling
from tests.sync import cluster

pytestmark = pytest.mark.integration

APP = "/dirac/ha/web"


def files(tag: str) -> dict[str, str]:
    app = cluster.fast_app(APP, instances=2, minimum=0.5, over=0.0, grace=20)
    return {APP.strip("/") + ".yaml": yaml.safe_dump(app),
            "images.yaml": yaml.safe_dump(
                {"images": {"dirac": {"repository": "lhcbdirac", "tag": tag}}})}


def converged(marathon: str, tag: str) -> bool:
    try:
        live = cluster.apps(marathon).get(APP)
    except requests.RequestException:
        return False
    return (live is not None and cluster.image_of(live) == f"lhcbdirac:{tag}"
            and not live.get("deployments") and cluster.healthy_tasks(live) == 2)


def logs(group: list[replicas.Replica]) -> str:
    return "\n".join(f"--- {r.name}\n{r.log.read_text()[-2500:]}" for r in group)


@pytest.fixture
def stack(tmp_path: Path, zk: zookeeper.ZooKeeper, database: str
          ) -> Iterator[tuple[launch.RunningCluster, Upstream, list[replicas.Replica]]]:
    dev = launch.launch(state_dir=tmp_path / "devcluster")
    group: list[replicas.Replica] = []
    try:
        upstream = Upstream.create(tmp_path / "git", files("v0"), message="v0")
        env = replicas.base_env(marathon=dev.url, repo=upstream.url, database=database,
                                zookeeper=zk.url())
        group += [replicas.start(name, env, tmp_path) for name in ("a", "b")]
        yield dev, upstream, group
    finally:
        for replica in group:
            replica.stop()
        dev.stop()


def test_kill_9_of_the_leader_mid_rolling_upgrade_the_other_leads_and_finishes_the_wait(
    stack: tuple[launch.RunningCluster, Upstream, list[replicas.Replica]], database: str,
    tmp_path: Path,
) -> None:
    dev, upstream, group = stack
    first = replicas.wait_for_leader(group)
    assert first is not None, logs(group)
    polling.eventually("v0 live", lambda: converged(dev.url, "v0"), timeout=120,
                       explain=lambda: logs(group))
    (other,) = [r for r in group if r is not first]
    # A follower serves reads from the shared records and refuses actions, naming the leader.
    polling.eventually("the follower names the leader", lambda: (
        (other.status() or {}).get("leadership") or {}).get("leaderUrl") == first.url,
        timeout=120, explain=lambda: logs(group))
    refused = requests.post(f"{other.url}/api/v1/sync", timeout=10)
    assert (refused.status_code, refused.json()["leaderUrl"]) == (409, first.url)
    assert [a["app_id"] for a in requests.get(f"{other.url}/api/v1/apps", timeout=10).json()
            ["apps"]] == [APP]
    for replica, leads in ((first, "1.0"), (other, "0.0")):
        metrics = requests.get(f"{replica.url}/metrics", timeout=10).text
        assert f"reconciler_leader {leads}" in metrics.splitlines(), replica.name
    head = upstream.commit(files("v1-slow"), message="v1-slow")
    store = records.RecordStore(database)
    try:
        # The leader has sent the rolling upgrade and recorded its deployment: kill it.
        polling.eventually("the upgrade's deployment recorded", lambda: any(
            c.revision == head and c.deployment_id for c in store.changes(app_id=APP)),
            timeout=120, explain=lambda: logs(group))
        assert cluster.deployments(dev.url), "the upgrade ended before the kill: too fast"
        first.kill()
        polling.eventually("the other replica leads", lambda: other.role() == "leader",
                           timeout=60, explain=lambda: logs(group))
        polling.eventually("v1-slow live", lambda: converged(dev.url, "v1-slow"), timeout=120,
                           explain=lambda: logs(group))
        # The new leader finished the wait: the change has its outcome, recorded once.
        polling.eventually("the upgrade recorded as succeeded, once", lambda: [
            c.outcome for c in store.changes(app_id=APP) if c.revision == head] == ["succeeded"],
            timeout=60, explain=lambda: f"{store.changes(app_id=APP)}\n{logs(group)}")
        changes = [c for c in store.changes(app_id=APP) if c.revision == head]
        # The run ends after its changes (its release's bookkeeping follows the outcome):
        # every run, the killed leader's included, must come to an end, none left open.
        polling.eventually("every run ended", lambda: all(
            r.outcome is not None for r in store.runs()), timeout=60,
            explain=lambda: f"{store.runs()}\n{logs(group)}")
        runs = store.runs()
        new_term = (other.status() or {}).get("leadership", {}).get("term")
    finally:
        store.close()
    # One deployment per release: v0's create and v1-slow's upgrade, nothing sent twice.
    assert len(cluster.versions(dev.url, APP)) == 2
    assert [r for r in runs if r.outcome is None] == []
    old_term = changes[0].term
    assert old_term is not None
    assert new_term is not None and new_term > old_term
    writes = writers.read(tmp_path / "devcluster")
    assert writes and all(w["replica"] and w["term"] for w in writes), writes
    assert replicas.writer_overlaps(writes) == []


def test_zookeeper_stopped_the_leader_stops_writing_says_why_then_carries_on(
    stack: tuple[launch.RunningCluster, Upstream, list[replicas.Replica]],
    zk: zookeeper.ZooKeeper, tmp_path: Path,
) -> None:
    dev, upstream, group = stack
    leader = replicas.wait_for_leader(group)
    assert leader is not None, logs(group)
    polling.eventually("v0 live", lambda: converged(dev.url, "v0"), timeout=120,
                       explain=lambda: logs(group))
    zk.stop()

    def not_ready_for_zookeeper() -> bool:
        try:
            answer = requests.get(f"{leader.url}/readyz", timeout=2)
        except requests.RequestException:
            return False
        return answer.status_code == 503 and any(
            "zookeeper" in reason.lower() for reason in answer.json()["reasons"])

    polling.eventually("the leader not ready for want of ZooKeeper", not_ready_for_zookeeper,
                       timeout=60, explain=lambda: logs(group))
    fenced_at = time.time()
    upstream.commit(files("v1"), message="v1")
    # Give both replicas many polls' worth of chances to write while ZooKeeper is away.
    time.sleep(12)
    written = [w for w in writers.read(tmp_path / "devcluster") if w["received"] >= fenced_at]
    assert written == [], written
    assert converged(dev.url, "v0")
    zk.start()
    assert replicas.wait_for_leader(group, timeout=60) is not None, logs(group)
    polling.eventually("v1 live", lambda: converged(dev.url, "v1"), timeout=120,
                       explain=lambda: logs(group))
    assert replicas.writer_overlaps(writers.read(tmp_path / "devcluster")) == []


def _facts(database: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                sa.select(schema.facts).order_by(schema.facts.c.key))]
    finally:
        engine.dispose()


def test_a_follower_reports_the_leaders_last_sync_from_the_records_and_writes_nothing(
    stack: tuple[launch.RunningCluster, Upstream, list[replicas.Replica]], database: str,
) -> None:
    dev, upstream, group = stack
    first = replicas.wait_for_leader(group)
    assert first is not None, logs(group)
    (other,) = [r for r in group if r is not first]
    polling.eventually("v0 live", lambda: converged(dev.url, "v0"), timeout=120,
                       explain=lambda: logs(group))
    head = upstream.commit(files("v1"), message="v1")
    polling.eventually("v1 live", lambda: converged(dev.url, "v1"), timeout=120,
                       explain=lambda: logs(group))
    # The follower applied nothing: what it says comes from the leader's run record.
    polling.eventually("the follower reports the leader's revision",
                       lambda: (other.status() or {}).get("revision") == head, timeout=120,
                       explain=lambda: f"{json.dumps(other.status())}\n{logs(group)}")
    status = other.status() or {}
    assert (status["lastSyncedRevision"], status["seenRevision"], status["lastOutcome"]) == (
        head, head, "succeeded"), status
    assert status["lastSyncAt"] is not None, status
    assert (status["leadership"]["role"], status["leadership"]["leaderUrl"]) == (
        "follower", first.url), status
    page = requests.get(f"{other.url}/", timeout=10)
    assert page.status_code == 200
    header = page.text.split('id="replica">', 1)[1].split("</header>", 1)[0]
    assert "follower" in header and first.url in header and head[:12] in header, header
    ready = requests.get(f"{other.url}/readyz", timeout=10)
    assert (ready.status_code, ready.json()["status"]["revision"]) == (200, head), ready.text
    # Its readiness probe reads the shared records, it never writes one (a write would
    # stamp the 'write probe' fact with a new time, or add it without a term).
    before = _facts(database)
    for _ in range(5):
        assert requests.get(f"{other.url}/readyz", timeout=10).status_code == 200
    after = _facts(database)
    assert after == before
    assert [row for row in after if row[-1] is None] == [], after
