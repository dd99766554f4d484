"""``reconciler run`` driven by Marathon's event stream: drift found and corrected from the
event alone, and a quiet cluster costs no request between resyncs (counted by a proxy between
the controller and the dev cluster, which can also cut the stream).

The dev cluster posts what Marathon posts for an API write: ``api_post_event`` with the full
app definition (Marathon ``core/event/Events.scala``: ``ApiPostEvent(clientIp, uri,
appDefinition)``; ``api/v2/AppsResource.scala``: ``maybePostEvent(req, plan.target.app(id))``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.controller.stack import CATALOG, PORTAL, Controller, repo_files, running

pytestmark = pytest.mark.integration

NEVER = "3600"
"""An interval no test lasts: drift checks and resyncs by the clock are off."""


def settled(controller: Controller) -> None:
    controller.wait("the first revision to be synced",
                    lambda: controller.get("/api/v1/status")["revision"])
    controller.wait("both apps healthy", lambda: all(
        controller.settled(a) for a in (CATALOG, PORTAL)))


def live_updates(controller: Controller) -> str:
    return str(controller.get("/api/v1/status")["liveUpdates"])


def test_drift_is_corrected_from_the_event_with_polling_disabled(tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=1, drift_interval=float(NEVER),
                 extra_env={"RECONCILER_RESYNC_INTERVAL": NEVER}) as controller:
        settled(controller)
        assert live_updates(controller) == "events"
        requests.put(f"{controller.marathon}/v2/apps{CATALOG}", json={"instances": 3},
                     params={"force": "true"}, timeout=10).raise_for_status()
        corrected = controller.wait("the drift corrected", lambda: [
            d for d in controller.get("/api/v1/drift")["drift"]
            if d["app_id"] == CATALOG and d["action"] == "corrected"], timeout=30)[0]
        assert corrected["kind"] == "scale" and "/v2/apps" in str(corrected["uri"])
        controller.wait("the catalog back at 1 instance",
                        lambda: controller.live()[CATALOG]["instances"] == 1)


def test_a_quiet_controller_sends_marathon_no_request_between_resyncs(tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=1, drift_interval=1, via_proxy=True,
                 extra_env={"RECONCILER_RESYNC_INTERVAL": NEVER}) as controller:
        proxy = controller.proxy
        assert proxy is not None
        settled(controller)
        # Wait for the refetches of the first sync's last events to be over.
        before = -1
        while proxy.total != before:
            before = proxy.total
            time.sleep(2)
        proxy.reset()
        # Git polls, drift checks (one a second) and the pages, for five seconds.
        for _ in range(5):
            time.sleep(1)
            for page in ("/", "/metrics", "/api/v1/apps", f"/api/v1/apps{CATALOG}",
                         "/readyz"):
                assert requests.get(f"{controller.url}{page}", timeout=10).status_code < 500
        checks = controller.get("/api/v1/status")["checks"]
        assert checks >= 5, "the controller did not check anything meanwhile"
        assert proxy.counts() == {}, "a quiet controller asked Marathon"


def test_without_the_event_stream_the_controller_polls_and_says_so(tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=1, drift_interval=1, via_proxy=True,
                 extra_env={"RECONCILER_RESYNC_INTERVAL": NEVER}) as controller:
        proxy = controller.proxy
        assert proxy is not None
        settled(controller)
        proxy.cut()
        controller.wait("the controller to say it polls",
                        lambda: live_updates(controller).startswith("polling"))
        metrics = requests.get(f"{controller.url}/metrics", timeout=10).text
        assert "reconciler_event_stream_up 0.0" in metrics
        ready = requests.get(f"{controller.url}/readyz", timeout=10).json()
        assert ready["status"]["liveUpdates"].startswith("polling"), ready
        # Polling finds drift all the same (no event reaches the controller now).
        requests.put(f"{controller.marathon}/v2/apps{CATALOG}", json={"instances": 2},
                     params={"force": "true"}, timeout=10).raise_for_status()
        controller.wait("the drift corrected by polling", lambda: [
            d for d in controller.get("/api/v1/drift")["drift"]
            if d["app_id"] == CATALOG and d["action"] == "corrected"], timeout=30)
        assert proxy.counts().get("GET /v2/apps", 0) >= 1
        proxy.restore()
        controller.wait("the stream followed again",
                        lambda: live_updates(controller) == "events")


def test_a_release_reads_marathon_s_app_list_once(tmp_path: Path) -> None:
    """The run's plan comes from one full read; what it left behind is read back app by app
    into the live cache, where the status board finds health. The run's report assesses no
    health of its own: a second full read at the end of a release of 10,000 apps was seconds
    of work and megabytes at the release's peak, for a report nothing read."""
    with running(tmp_path, poll_interval=1, drift_interval=float(NEVER), via_proxy=True,
                 extra_env={"RECONCILER_RESYNC_INTERVAL": NEVER}) as controller:
        proxy = controller.proxy
        assert proxy is not None
        settled(controller)
        proxy.reset()
        released = controller.upstream.commit(repo_files(tag="v8r2p45"), message="release")
        controller.wait("the release synced", lambda: controller.get(
            "/api/v1/status")["lastSyncedRevision"] == released, timeout=90)
        controller.wait("the status board showing the new image, healthy", lambda: all(
            (row := controller.get(f"/api/v1/apps{app}"))["image"] == "lhcbdirac:v8r2p45"
            and row["health"] == "Healthy" for app in (CATALOG, PORTAL)), timeout=60)
        assert proxy.counts().get("GET /v2/apps", 0) == 1, proxy.counts()
        assert proxy.counts().get("GET /v2/apps/{id}", 0) >= 2, proxy.counts()
