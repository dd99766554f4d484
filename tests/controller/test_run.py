"""``reconciler run`` end to end: a real bare Git repo, the dev cluster subprocess and the
controller as a subprocess, driven only through Git, webhooks and Marathon's API."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests

from tests.controller.stack import (
    CATALOG,
    PORTAL,
    SECRET,
    TOKEN,
    Controller,
    repo_files,
    running,
)
from tests.sync import cluster

pytestmark = pytest.mark.integration


def first_sync(controller: Controller) -> str:
    status = controller.wait("the first revision to be synced",
                             lambda: controller.get("/api/v1/status")["revision"])
    controller.wait("both apps healthy", lambda: all(
        controller.settled(a) for a in (CATALOG, PORTAL)))
    return str(status)


def drifts(controller: Controller, app_id: str) -> list[dict[str, object]]:
    return [d for d in controller.get("/api/v1/drift")["drift"] if d["app_id"] == app_id]


def test_commit_is_applied_within_a_poll_and_drift_is_recorded_then_corrected_or_reported(
        tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=1, drift_interval=60) as controller:
        first_sync(controller)
        # "Sync this app" says why it will not, instead of "queued" and nothing after.
        asked = requests.post(f"{controller.url}/api/v1/apps{CATALOG}/sync", timeout=30,
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert asked.status_code == 200, asked.text
        assert (asked.json()["accepted"], asked.json()["action"]) == (False, "no-op")
        assert asked.json()["message"].startswith(f"nothing to do: {CATALOG} already equals")
        sha = controller.upstream.commit(repo_files(tag="v8r2p45"), message="Release v8r2p45")
        controller.wait("the commit to reach Marathon",
                        lambda: controller.image_of(CATALOG) == "lhcbdirac:v8r2p45", timeout=30)
        controller.wait("the controller to report the new revision",
                        lambda: controller.get("/api/v1/status")["revision"] == sha)
        controller.wait("the release to settle", lambda: all(
            controller.settled(a) for a in (CATALOG, PORTAL)))

        # Someone scales both apps through Marathon's API, behind Git's back. The drift
        # interval is 60 s: only the event stream can make the controller notice this fast.
        for app_id in (CATALOG, PORTAL):
            requests.put(f"{controller.marathon}/v2/apps{app_id}", json={"instances": 3},
                         params={"force": "true"}, timeout=10).raise_for_status()
        corrected = controller.wait(
            "the catalog drift to be corrected",
            lambda: [d for d in drifts(controller, CATALOG) if d["action"] == "corrected"],
            timeout=30)[0]
        assert corrected["kind"] == "scale" and corrected["client_ip"] == "127.0.0.1"
        assert corrected["status"] == "resolved" and corrected["policy"] == "correct"
        assert "/v2/apps" in str(corrected["uri"])
        controller.wait("the catalog back at 1 instance",
                        lambda: controller.live()[CATALOG]["instances"] == 1)
        reported = controller.wait(
            "the portal drift to be reported",
            lambda: [d for d in drifts(controller, PORTAL) if d["action"] == "reported"])[0]
        assert reported["status"] == "open" and reported["client_ip"] == "127.0.0.1"
        assert controller.live()[PORTAL]["instances"] == 3  # report: live left alone
        # The report comes about a second after the scale-up, when its new tasks may not have
        # passed their first health check (1 s apart): until then the portal is progressing.
        controller.wait("the portal's scale-up to settle", lambda: controller.settled(PORTAL),
                        timeout=30)

        # The portal's scale deployment (made behind Git's back) may still be running: its
        # state is progressing until it ends, then drifted.
        controller.wait("the portal to show as drifted", lambda: {
            a["app_id"]: a["state"] for a in controller.get("/api/v1/apps")["apps"]
        }[PORTAL] == "drifted")
        metrics = requests.get(f"{controller.url}/metrics", timeout=10).text
        assert 'reconciler_reconciles_total{outcome="succeeded",trigger="poll"}' in metrics
        assert 'reconciler_drift_actions_total{action="corrected"} 1.0' in metrics
        assert "reconciler_open_drift 1.0" in metrics
        assert 'reconciler_apps{state="drifted"} 1.0' in metrics
        assert (f'reconciler_app_info{{app="{PORTAL}",health_status="Healthy",'
                f'state="drifted",sync_status="OutOfSync"}} 1.0') in metrics
        assert f'reconciler_app_condition{{app="{PORTAL}",condition="Drifted"}} 1.0' in metrics
        assert "reconciler_reconcile_duration_seconds_count" in metrics

        state = str(tmp_path / "state")
        listed = cluster.reconciler("drift", "--state-dir", state, "--open", "--output", "json")
        assert listed.returncode == 0, cluster.explain(listed)
        assert [d["app_id"] for d in json.loads(listed.stdout)] == [PORTAL]
        html = cluster.reconciler("drift", "--state-dir", state, "--output", "html")
        assert html.returncode == 0 and PORTAL in html.stdout and CATALOG in html.stdout
        assert "<link" not in html.stdout and "<script" not in html.stdout
        status = cluster.reconciler("status", "--state-dir", state, "--marathon",
                                    controller.marathon)
        assert status.returncode == 2, cluster.explain(status)  # 2: an app is not in sync
        states = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()
                  if line.startswith("/")}
        assert states == {CATALOG: "in", PORTAL: "drifted"}

        # Every drift ends in a recorded action: the correction names its run...
        history = controller.get("/api/v1/history")["history"]
        runs = {e["run_id"]: e for e in history if e["kind"] == "run"}
        assert runs[corrected["run_id"]]["trigger"] == "drift-correction"
        assert reported["reason"] == "drift policy is report"
        # ...and checks that found nothing to do (a poll a second) are counted, not runs.
        assert len([r for r in runs.values() if r["trigger"] == "poll"]) == 2, runs
        checked = controller.get("/api/v1/status")
        assert checked["checks"] >= 2 and checked["lastCheckedAt"], checked
        assert "reconciler_checks_total{kind=\"poll\"}" in requests.get(
            f"{controller.url}/metrics", timeout=10).text

        # A new commit syncs the portal back to Git: the reported hand edit is overwritten
        # by that revision, and recorded so (it was only "gone" before).
        newer = controller.upstream.commit(repo_files(tag="v8r2p46"), message="Release v8r2p46")
        overwritten = controller.wait(
            "the portal drift to be overwritten by the new revision",
            lambda: [d for d in drifts(controller, PORTAL) if d["action"] == "overwritten"],
            timeout=60)[0]
        assert (overwritten["revision"], overwritten["status"]) == (newer, "resolved")


def test_a_webhook_applies_a_commit_long_before_the_next_poll(tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=60) as controller:
        first_sync(controller)
        controller.upstream.commit(repo_files(tag="v8r2p45"), message="Release v8r2p45")
        refused = requests.post(f"{controller.url}/webhooks/gitlab",
                                headers={"X-Gitlab-Token": "wrong"}, json={}, timeout=10)
        assert refused.status_code == 401
        body = b'{"ref": "refs/heads/main"}'
        bad = requests.post(f"{controller.url}/webhooks/github", data=body, timeout=10,
                            headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
        assert bad.status_code == 401
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        accepted = requests.post(f"{controller.url}/webhooks/github", data=body, timeout=10,
                                 headers={"X-Hub-Signature-256": f"sha256={signature}",
                                          "X-GitHub-Event": "push"})
        assert accepted.status_code == 202, accepted.text
        # The next poll is ~60 s away; the webhook makes it happen now.
        controller.wait("the webhook's commit to reach Marathon",
                        lambda: controller.image_of(CATALOG) == "lhcbdirac:v8r2p45", timeout=30)
        runs = controller.get("/api/v1/history")["history"]
        assert any(e["kind"] == "run" and e["trigger"] == "webhook" for e in runs)

        # A burst: five merges, each announced by GitLab. The controller applies the last
        # one, without a reconcile per push: at most the one running and one queued behind.
        before = {e["run_id"] for e in runs if e["kind"] == "run"}
        for n in range(5):
            last = controller.upstream.commit(repo_files(tag=f"v8r2p5{n}"),
                                              message=f"Release v8r2p5{n}")
            requests.post(f"{controller.url}/webhooks/gitlab", timeout=10,
                          headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"},
                          json={"object_kind": "push", "ref": "refs/heads/main"}
                          ).raise_for_status()
        controller.wait("the burst's last commit to be synced",
                        lambda: controller.get("/api/v1/status")["revision"] == last)
        assert controller.image_of(CATALOG) == "lhcbdirac:v8r2p54"
        burst = [e for e in controller.get("/api/v1/history")["history"]
                 if e["kind"] == "run" and e["run_id"] not in before]
        assert 1 <= len(burst) <= 2, burst


def test_flapping_drift_stops_being_corrected(tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=1, extra_env={"RECONCILER_FLAP_THRESHOLD": "1"}
                 ) as controller:
        first_sync(controller)
        scale = f"{controller.marathon}/v2/apps{CATALOG}"
        requests.put(scale, json={"instances": 2}, params={"force": "true"},
                     timeout=10).raise_for_status()
        controller.wait("the first drift to be corrected", lambda: [
            d for d in drifts(controller, CATALOG) if d["action"] == "corrected"], timeout=30)
        controller.wait("the catalog to settle back", lambda: controller.settled(CATALOG)
                        and controller.live()[CATALOG]["instances"] == 1)
        requests.put(scale, json={"instances": 2}, params={"force": "true"},
                     timeout=10).raise_for_status()
        flapping = controller.wait("the drift to be declared flapping", lambda: [
            d for d in drifts(controller, CATALOG) if d["status"] == "flapping"], timeout=30)[0]
        assert flapping["action"] == "flapping-stopped"
        assert controller.live()[CATALOG]["instances"] == 2  # left alone: a human decides
        # The report says how to accept the change when something else owns the field.
        assert flapping["suggested_ignore"] == f"ignore:\n  {CATALOG}:\n    - /instances"
        listed = cluster.reconciler("drift", "--state-dir", str(tmp_path / "state"), "--open")
        assert listed.returncode == 0, cluster.explain(listed)
        assert f"add to reconciler.yaml:\n      ignore:\n        {CATALOG}:\n" \
               "          - /instances" in listed.stdout, listed.stdout
