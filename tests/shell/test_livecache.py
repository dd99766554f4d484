"""The live cache on a real dev cluster, through a counting proxy that can cut the stream.

What the dev cluster posts follows Marathon: ``api_post_event`` carries the full app
definition written (``AppsResource.maybePostEvent`` with ``plan.target.app(appId)``), and
``HttpEventStreamHandleActor.preStart`` subscribes the stream, then publishes its
``event_stream_attached`` (``core/event/Events.scala``, ``core/event/impl/stream/``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from reconciler.core import model
from reconciler.devcluster import launch
from reconciler.shell import events, liveapps, livecache, marathon
from testbed.apps import fast_app
from testbed.counting_proxy import CountingProxy
from tests.support import polling

APP = "/dirac/catalog"


@dataclass
class Heard:
    writes: list[tuple[str, events.Attribution]] = field(default_factory=list)
    changes: list[frozenset[str]] = field(default_factory=list)


@dataclass
class Setup:
    marathon: str
    proxy: CountingProxy
    cache: livecache.LiveCache
    heard: Heard


def put(url: str, app: model.JSON) -> None:
    requests.put(f"{url}/v2/apps/{app['id'].strip('/')}", json=app, timeout=10,
                 params={"force": "true"}).raise_for_status()


def first_app(url: str) -> None:
    """The app, deployed before the cache starts: the events of its deployment must not
    reach the cache later (their refetch would see what a test writes behind the stream's
    back, during a gap)."""
    put(url, fast_app(APP, instances=0))
    polling.eventually("the first deployment is over", lambda: requests.get(
        f"{url}/v2/deployments", timeout=10).json() == [])


def instances(cache: livecache.LiveCache) -> int | None:
    held = cache.cached()
    app = held.get(APP) if held is not None else None
    return app["instances"] if app is not None else None


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    dev = launch.launch(state_dir=tmp_path / "devcluster")
    proxy = CountingProxy(dev.url).start()
    client = marathon.MarathonClient(marathon.ClientSettings(urls=(proxy.url,), timeout=10))
    heard = Heard()
    cache = livecache.LiveCache(
        client, resync_interval=3600,
        on_write=lambda app_id, who: heard.writes.append((app_id, who)),
        on_change=heard.changes.append)
    try:
        first_app(dev.url)
        cache.start()
        polling.eventually("the cache follows the stream", lambda: cache.following)
        yield Setup(marathon=dev.url, proxy=proxy, cache=cache, heard=heard)
    finally:
        cache.stop()
        proxy.stop()
        dev.stop()
        client.close()


def test_an_api_write_reaches_the_cache_from_its_event_with_who_wrote_it(setup: Setup) -> None:
    assert instances(setup.cache) == 0 and setup.cache.resyncs == 1
    put(setup.marathon, fast_app(APP, instances=2))  # straight to Marathon, not the proxy
    polling.eventually("the event's definition in the cache", lambda: instances(setup.cache) == 2)
    app_id, who = setup.heard.writes[-1]
    assert app_id == APP and who.uri == f"/v2/apps{APP}" and who.client_ip
    held = setup.cache.cached()
    assert held is not None and who.version == held.versions()[APP]
    assert setup.cache.resyncs == 1, "an event must not cost a full read"


def test_after_a_gap_in_the_stream_the_cache_resyncs_and_sees_what_it_missed(
    setup: Setup,
) -> None:
    setup.proxy.cut()
    polling.eventually("the cache knows the stream is gone", lambda: not setup.cache.following)
    assert setup.cache.stream_error
    put(setup.marathon, fast_app(APP, instances=3))  # during the gap: no event reaches it
    time.sleep(1.0)
    assert instances(setup.cache) == 0
    setup.proxy.reset()
    # Polling meanwhile: every read is a request.
    assert setup.cache.current().get(APP)["instances"] == 3  # type: ignore[index]
    assert setup.proxy.counts().get("GET /v2/apps") == 1

    setup.cache.resync()  # back to what it held before the gap, for the test's sake
    setup.proxy.restore()
    polling.eventually("the stream is followed again", lambda: setup.cache.following)
    assert setup.cache.resyncs >= 3  # the first, the one above, the one after the gap
    assert instances(setup.cache) == 3
    assert setup.cache.stream_error is None


def test_a_resync_takes_a_new_definition_and_holds_an_unchanged_one_as_marathon_gave_it(
    setup: Setup,
) -> None:
    # A resync packs again only the status part of a version it holds: the rest of the
    # definition must still be Marathon's, and a new version's rest must be the new one.
    def marathon_app() -> model.JSON:
        answer = requests.get(f"{setup.marathon}/v2/apps{APP}", timeout=10).json()["app"]
        return {k: v for k, v in answer.items() if k not in liveapps.STATUS_FIELDS}

    def held_app() -> model.JSON:
        held = setup.cache.resync().get(APP)
        assert held is not None
        return {k: v for k, v in held.items() if k not in liveapps.STATUS_FIELDS}

    assert held_app() == marathon_app()
    assert held_app() == marathon_app()  # the second resync reuses what the first packed
    setup.proxy.cut()
    polling.eventually("the cache knows the stream is gone", lambda: not setup.cache.following)
    put(setup.marathon, fast_app(APP, instances=0, env={"DIRAC_SETUP": "LHCb-Production"}))
    polling.eventually("the change is deployed", lambda: requests.get(
        f"{setup.marathon}/v2/deployments", timeout=10).json() == [])
    changed = held_app()
    assert changed["env"] == {"DIRAC_SETUP": "LHCb-Production"}
    assert changed == marathon_app()


def test_a_quiet_stream_is_reconnected_and_resynced_every_resync_interval(
    tmp_path: Path,
) -> None:
    """Marathon sends no keep-alive: the idle timeout is the resync interval, and the
    reconnection after it is the periodic resync (quiet: the stream never counts as lost)."""
    dev = launch.launch(state_dir=tmp_path / "devcluster")
    proxy = CountingProxy(dev.url).start()
    client = marathon.MarathonClient(marathon.ClientSettings(urls=(proxy.url,), timeout=10))
    cache = livecache.LiveCache(client, resync_interval=1.5, on_write=lambda *_: None)
    try:
        first_app(dev.url)
        cache.start()
        polling.eventually("the cache follows the stream", lambda: cache.following)
        polling.eventually("two more resyncs", lambda: cache.resyncs >= 3, timeout=20)
        counts = proxy.counts()
        assert counts["GET /v2/events"] >= 3 and counts["GET /v2/apps"] >= 3, counts
        polling.eventually("the stream followed again", lambda: cache.following)
    finally:
        cache.stop()
        proxy.stop()
        dev.stop()
        client.close()


def test_a_resync_drops_an_app_marathon_no_longer_lists_and_says_it_changed(
    setup: Setup,
) -> None:
    # A resync replaces the apps one by one as it reads them (a release's resync no longer
    # holds every app twice); the apps it did not read go at its end.
    setup.proxy.cut()
    polling.eventually("the cache knows the stream is gone", lambda: not setup.cache.following)
    requests.delete(f"{setup.marathon}/v2/apps{APP}", params={"force": "true"},
                    timeout=10).raise_for_status()
    polling.eventually("the app is gone", lambda: requests.get(
        f"{setup.marathon}/v2/apps{APP}", timeout=10).status_code == 404)
    setup.heard.changes.clear()
    assert setup.cache.resync().get(APP) is None
    assert instances(setup.cache) is None
    assert any(APP in changed for changed in setup.heard.changes)


@pytest.mark.parametrize("route", ["GET /v2/apps", "GET /v2/apps/{id}"])
def test_a_read_that_a_write_overtook_does_not_put_the_app_back_as_it_was(
    setup: Setup, route: str,
) -> None:
    """A read of Marathon (a resync, or one app's refetch) that began before a write and
    ended after its event must not replace the newer definition the event brought: the
    cache showed live as before the write until the next resync, and the drift check found
    drift in apps a release had just written (16 of 10,000 in one run)."""
    held = setup.proxy.hold_next(route)
    read = threading.Thread(target=setup.cache.resync if route == "GET /v2/apps"
                            else lambda: setup.cache.refresh([APP]))
    read.start()
    try:
        assert held.read.wait(30), "the read never reached Marathon"
        put(setup.marathon, fast_app(APP, instances=2))  # after the read, before its answer
        polling.eventually("the write's event in the cache", lambda: instances(setup.cache) == 2)
    finally:
        held.release.set()
        read.join(30)
    assert instances(setup.cache) == 2
    version = requests.get(f"{setup.marathon}/v2/apps{APP}", timeout=10).json()["app"]["version"]
    held_now = setup.cache.cached()
    assert held_now is not None and held_now.versions()[APP] == version
