"""What on-call sees of several environments under one ``reconciler run``: notices that say
which environment they are about, and pages, API and metrics that read each environment's
own status board. Certification and production each on its own dev cluster, the controllers
running in this process, a real chat webhook receiver and the fleet's web app on a real port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from reconciler.devcluster import launch
from reconciler.shell import config, environments, telemetry
from reconciler.web import environments as fleet_web
from testbed.gitrepos import Upstream
from tests.environments import stack
from tests.support import polling, webhooks
from tests.web import server

PUBLIC_URL = "https://reconciler.example.org"
Clusters = tuple[launch.RunningCluster, launch.RunningCluster]


def start_fleet(root: Path, clusters: Clusters, upstream: Upstream,
                extra: Mapping[str, str] | None = None) -> environments.Fleet:
    cert, prod = clusters
    settings = config.load({
        "RECONCILER_REPO_URL": upstream.url, "RECONCILER_STATE_DIR": str(root / "state"),
        "RECONCILER_POLL_INTERVAL": "0.5", "RECONCILER_DRIFT_INTERVAL": "60", **(extra or {}),
        "RECONCILER_ENVIRONMENTS": stack.environments(cert={"marathon_url": cert.url},
                                                      prod={"marathon_url": prod.url})})
    fleet = environments.build(settings)
    fleet.start()
    return fleet


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    files = stack.repo_files(cert_tag="v8r2p44", prod_tag="v8r2p44")
    # Certification gives a rollout 8 s: a release that never gets healthy is rolled back
    # and quarantined within the test.
    files["cert/reconciler.yaml"] = yaml.safe_dump({"managedPrefixes": ["/dirac-cert"],
                                                    "deadlines": {"/dirac-cert": 8}})
    return Upstream.create(tmp_path / "git", files)


@pytest.fixture
def notifying_fleet(tmp_path: Path, clusters: Clusters, upstream: Upstream,
                    receiver: webhooks.Receiver) -> Iterator[environments.Fleet]:
    fleet = start_fleet(tmp_path, clusters, upstream, extra={
        "RECONCILER_NOTIFY_WEBHOOK_URL": receiver.url, "RECONCILER_PUBLIC_URL": PUBLIC_URL})
    try:
        yield fleet
    finally:
        fleet.stop()
        fleet.close()


def settled(clusters: Clusters, tag: str) -> bool:
    cert, prod = clusters
    return (all(stack.running_tag(cert.url, a) == tag for a in stack.CERT_APPS)
            and all(stack.running_tag(prod.url, a) == tag for a in stack.PROD_APPS))


def tag_cell(tag: str) -> str:
    """An app's image tag in the apps table of the dashboard (templates/apps.html)."""
    return f'<td class="mono">{tag}</td>'


def fields_of(body: dict[str, Any]) -> dict[str, str]:
    return {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}


@pytest.mark.integration
def test_a_quarantine_in_one_environment_is_announced_naming_it_and_linking_to_its_pages(
    clusters: Clusters, upstream: Upstream, receiver: webhooks.Receiver,
    notifying_fleet: environments.Fleet,
) -> None:
    polling.eventually("both environments on v8r2p44", lambda: settled(clusters, "v8r2p44"))

    upstream.commit({"cert/images.yaml": stack.images("v8r2p46-broken")},
                    message="certification: lhcbdirac v8r2p46-broken")
    quarantined = polling.eventually("a quarantine announced", lambda: [
        b for b in list(receiver.bodies) if "quarantined" in b["text"]],
        timeout=120, explain=lambda: "\n".join(receiver.texts()))

    notice = quarantined[0]
    app_id = notice["text"].rsplit(": ", 1)[1]
    assert app_id in stack.CERT_APPS, notice["text"]
    assert notice["text"] == f"reconciler: quarantined in cert: {app_id}"
    assert fields_of(notice)["environment"] == "cert"
    assert "environment: cert" in notice["attachments"][0]["fallback"]
    # The link opens certification's page of the app, not the site root's.
    assert notice["attachments"][0]["title_link"] == (
        f"{PUBLIC_URL}/environments/cert/apps/{app_id.lstrip('/')}")
    assert "prod" not in json.dumps(notice), notice
    # Production's apps were untouched: nothing was announced about production at all.
    assert receiver.bodies and all(
        fields_of(b)["environment"] == "cert" and " in cert" in b["text"]
        and "prod" not in json.dumps(b) for b in receiver.bodies), receiver.texts()
    assert all(stack.running_tag(clusters[1].url, a) == "v8r2p44" for a in stack.PROD_APPS)


@pytest.mark.integration
def test_each_environment_pages_api_and_metrics_read_its_own_status_board(
    tmp_path: Path, clusters: Clusters, upstream: Upstream,
) -> None:
    fleet = start_fleet(tmp_path, clusters, upstream)
    try:
        with server.serving(fleet_web.create_fleet_app(fleet)) as url:
            def apps(name: str) -> dict[str, dict[str, Any]]:
                got = requests.get(f"{url}/api/v1/environments/{name}/apps", timeout=10)
                got.raise_for_status()
                return {a["app_id"]: a for a in got.json()["apps"]}

            def in_sync_on(name: str, tag: str) -> bool:
                shown = apps(name)
                return bool(shown) and all(a["state"] == "in sync" and a["image_tag"] == tag
                                           for a in shown.values())

            for name in ("cert", "prod"):
                polling.eventually(f"{name} in sync on v8r2p44",
                                 lambda n=name: in_sync_on(n, "v8r2p44"))
            assert set(apps("cert")) == set(stack.CERT_APPS)
            assert set(apps("prod")) == set(stack.PROD_APPS)
            cert_page = requests.get(f"{url}/environments/cert/", timeout=10).text
            prod_page = requests.get(f"{url}/environments/prod/", timeout=10).text
            assert all(a in cert_page for a in stack.CERT_APPS)
            assert not any(a in cert_page for a in stack.PROD_APPS)
            assert all(a in prod_page for a in stack.PROD_APPS)
            assert not any(a in prod_page for a in stack.CERT_APPS)

            # What the pages say is each environment's board, which the metrics publish too,
            # labelled by environment.
            for name in ("cert", "prod"):
                board = fleet.members[name].controller.status_board.snapshot()
                assert {r.app_id: str(r.state) for r in board.rows} == {
                    a: s["state"] for a, s in apps(name).items()}
            metrics = polling.eventually("the app series of both environments", lambda: (
                m := requests.get(f"{url}/metrics", timeout=10).text)
                and all(f'app="{a}",environment="cert"' in m for a in stack.CERT_APPS)
                and all(f'app="{a}",environment="prod"' in m for a in stack.PROD_APPS) and m)
            assert 'reconciler_environment_apps{environment="cert",state="in sync"} 2.0' \
                in metrics
            assert 'reconciler_environment_apps{environment="prod",state="in sync"} 1.0' \
                in metrics
            assert 'reconciler_apps{state="in sync"} 3.0' in metrics
            # What each controller says of itself is its environment's own series; the plain
            # series hold for both (every stream followed), not whichever wrote last.
            for name in ("cert", "prod"):
                assert f'reconciler_environment_event_stream_up{{environment="{name}"}} 1.0' \
                    in metrics
                assert re.search(r'reconciler_environment_synced_revision_info\{environment="'
                                 + name + r'",revision="[0-9a-f]{40}"\} 1\.0', metrics)
                assert f'reconciler_environment_last_sync_timestamp_seconds{{environment=' \
                       f'"{name}"}}' in metrics
            assert "reconciler_event_stream_up 1.0" in metrics

            # A release in certification shows on certification's pages; production's stay.
            upstream.commit({"cert/images.yaml": stack.images("v8r2p45")},
                            message="certification: lhcbdirac v8r2p45")
            polling.eventually("cert's page shows v8r2p45 in sync", lambda: (
                in_sync_on("cert", "v8r2p45") and requests.get(
                    f"{url}/environments/cert/", timeout=10).text.count(tag_cell("v8r2p45"))
                == len(stack.CERT_APPS)))
            # Production's desired revision is the same commit (one repo), its apps' tags not.
            assert in_sync_on("prod", "v8r2p44")
            prod_page = requests.get(f"{url}/environments/prod/", timeout=10).text
            assert prod_page.count(tag_cell("v8r2p44")) == len(stack.PROD_APPS)
            assert tag_cell("v8r2p45") not in prod_page
            overview = requests.get(f"{url}/api/v1/environments", timeout=10).json()
            assert {e["name"]: e["apps"] for e in overview["environments"]} == {
                "cert": {"in sync": 2}, "prod": {"in sync": 1}}
    finally:
        fleet.stop()
        fleet.close()
    # A stopped environment's app series are withdrawn with its board.
    after = telemetry.metrics_text()[0].decode()
    assert 'environment="cert"' not in after and 'environment="prod"' not in after
