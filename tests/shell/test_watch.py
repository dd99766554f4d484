"""The deployments watch on a real dev cluster: an end heard on the event stream serves
every waiter of its deployment, and ends are kept only up to a bound, the oldest forgotten
first (a release of 10,000 apps heard 10,000 ends, kept for the life of the process before).

The dev cluster posts ``deployment_success`` once a deployment is done, as Marathon's
``DeploymentManagerActor`` does (``core/deployment/impl/DeploymentManagerActor.scala``,
``DeploymentSuccess`` on the event bus), and the stream keeps their order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from reconciler.devcluster import launch
from reconciler.shell import marathon, steps
from reconciler.shell import watch as watching
from testbed.counting_proxy import CountingProxy
from tests.support import polling

pytestmark = pytest.mark.integration

WAIT = 30.0
"""Seconds a deployment may take at most (a bound against hanging, not a timing)."""


@pytest.fixture
def watch(client: marathon.MarathonClient) -> Iterator[watching.Watch]:
    # Safety polls of /v2/deployments every 0.2 s: a forgotten end is seen gone at once.
    options = steps.ApplyOptions(poll_interval=0.2, poll_interval_with_events=0.2,
                                 attach_timeout=10.0)
    watch = watching.Watch(client, clock=time.monotonic, sleep=time.sleep, options=options)
    watch.start()
    assert watch.streaming, "the event stream never attached"
    try:
        yield watch
    finally:
        watch.close()


def _create(client: marathon.MarathonClient, name: str) -> str:
    created = client.create_app({"id": f"/dirac/{name}", "cmd": "sleep 600", "instances": 1,
                                 "cpus": 0.01, "mem": 16})
    assert created.deployment_id
    return created.deployment_id


def _wait(watch: watching.Watch, deployment_id: str) -> watching.Ending:
    now = time.monotonic()
    return watch.wait("/dirac/any", deployment_id, started=now, deadline_at=now + WAIT,
                      on_progress=None)


def test_an_end_serves_every_waiter_of_its_deployment(
        client: marathon.MarathonClient, watch: watching.Watch) -> None:
    # Two steps blocked by one deployment (another tool's) both wait for its end.
    deployment = _create(client, "once")
    assert _wait(watch, deployment) is watching.Ending.SUCCEEDED
    assert _wait(watch, deployment) is watching.Ending.SUCCEEDED


def test_ends_are_kept_up_to_the_bound_the_oldest_forgotten_first(
        client: marathon.MarathonClient, watch: watching.Watch,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "ENDS_KEPT", 2)
    unwaited = []
    for index in range(4):  # one after another: their ends are heard in this order
        unwaited.append(_create(client, f"unwaited-{index}"))
        polling.eventually("the deployment ended", lambda: not client.list_deployments())
    # Heard after the four: once it is seen, theirs have been heard too.
    assert _wait(watch, _create(client, "last")) is watching.Ending.SUCCEEDED
    # The bound held two ends when the last came: the fourth's and the last's.
    assert [_wait(watch, d) for d in unwaited] == [
        watching.Ending.GONE, watching.Ending.GONE, watching.Ending.GONE,
        watching.Ending.SUCCEEDED]


def test_a_progress_line_reads_the_app_waited_on_alone(
        devcluster: launch.RunningCluster) -> None:
    """Each waiter's progress line reads its own app, at most once per progress interval.
    It listed every app each interval and kept them: with a progress callback (the
    controller passed one in one commit) a release of 10,000 apps peaked at 341 MB instead of
    about 200 (``bench/memory.py --no-trace``, in docs/benchmarks.md)."""
    proxy = CountingProxy(devcluster.url).start()
    client = marathon.MarathonClient(marathon.ClientSettings(urls=(proxy.url,), timeout=10))
    now = [100.0]
    watch = watching.Watch(client, clock=lambda: now[0], sleep=time.sleep,
                           options=steps.ApplyOptions(progress_interval=1.0))
    try:
        for name in ("a", "b", "c"):
            _create(client, name)
        proxy.reset()
        first = watch.app("/dirac/a")
        assert first is not None and first["id"] == "/dirac/a" and "tasks" in first
        assert watch.app("/dirac/a") is first  # within the interval: not read again
        assert proxy.counts() == {"GET /v2/apps/{id}": 1}
        now[0] += 1.0
        assert watch.app("/dirac/b") is not None
        assert watch.app("/dirac/missing") is None
        again = watch.app("/dirac/a")  # the interval passed: read again
        assert again is not None and again is not first
        assert proxy.counts() == {"GET /v2/apps/{id}": 4}
    finally:
        watch.close()
        client.close()
        proxy.stop()
