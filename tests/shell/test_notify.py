"""Notifications: once per transition, saying what, why and who, never a secret.

A real record store (SQLite in a temporary folder) filled through its own API, and a real
HTTP receiver (http.server in a thread) standing in for Mattermost's incoming webhook.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sentry_sdk

from reconciler.shell import config, notices, notify, records, telemetry
from reconciler.shell.ports import free_port
from tests.browser import stack as browser_stack
from tests.support import webhooks

SECRET = "s3cr3t-db-password-value"
OTHER_SECRET = "tok-9f8e7d6c5b4a"
PORTAL = "/dirac-cert/web/portal"
PORTAL_DEFINITION = {
    "id": PORTAL, "instances": 1, "cpus": 0.25,
    "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"}},
    "env": {"DIRAC_SETUP": "LHCb-Certification", "DB_PASSWORD": SECRET},
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[records.RecordStore]:
    s = records.open_store(tmp_path / "state")
    # Notifications on from the start: only what is recorded after this is announced.
    s.first_claimed_at(notify.ENABLED_KEY)
    try:
        yield s
    finally:
        s.close()


def _applied(store: records.RecordStore, *, revision: str = "a" * 40,
             author: str = "Alice Release <alice@example.org>",
             message: str = "Bump lhcbdirac to v8r2p44") -> int:
    """Record a successful sync of the portal from ``revision`` (drift is measured from it)."""
    store.record_revision(revision=revision, definitions={PORTAL: PORTAL_DEFINITION},
                          author=author, message=message)
    run_id = store.start_run(revision=revision, trigger="poll", requested_by=None,
                             dry_run=False)
    change_id = store.record_deployment(
        run_id=run_id, app_id=PORTAL, action="update", revision=revision,
        deployment_id="d-1", version="2026-11-25T03:00:00.000Z", previous_version=None,
        purpose="change",
        patch=[{"op": "replace", "path": "/container/docker/image",
                "value": "lhcbdirac:v8r2p44"}], deadline_seconds=60)
    store.finish_change(change_id, outcome="succeeded", reason=None)
    store.finish_run(run_id, outcome="succeeded", error=None, summary={})
    return run_id


def _notifier(store: records.RecordStore, url: str | None, **kwargs: Any) -> notify.Notifier:
    return notify.Notifier(records=store, webhook_url=url,
                           dashboard_url="http://reconciler.example.org", **kwargs)


def test_drift_detected_is_announced_once_with_what_and_who(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    _applied(store)
    store.observe_drift(app_id=PORTAL, kind="scale", fingerprint="f1", policy="report",
                        patch=[{"op": "replace", "path": "/instances", "value": 5}],
                        client_ip="10.1.2.3", uri="/v2/apps/dirac-cert/web/portal")
    notifier = _notifier(store, receiver.url)

    first = notifier.scan()
    again = notifier.scan()

    assert [n.transition for n in first] == [notices.Transition.DRIFT_DETECTED]
    assert again == []
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert PORTAL in body["text"] and "drift detected" in body["text"]
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert fields["what"] == "/instances: 1 → 5"
    assert "10.1.2.3" in fields["who"]
    assert "policy report" in fields["why"]
    assert body["attachments"][0]["title_link"] == (
        "http://reconciler.example.org/apps/dirac-cert/web/portal")


def test_a_second_notifier_on_the_same_store_sends_nothing_again(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    _applied(store)
    store.observe_drift(app_id=PORTAL, kind="scale", fingerprint="f1", policy="correct",
                        patch=[{"op": "replace", "path": "/instances", "value": 3}])
    _notifier(store, receiver.url).scan()
    assert _notifier(store, receiver.url).scan() == []  # e.g. after a controller restart
    assert len(receiver.bodies) == 1


def test_drift_then_correction_are_two_transitions(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    _applied(store)
    drift, _ = store.observe_drift(
        app_id=PORTAL, kind="scale", fingerprint="f1", policy="correct",
        patch=[{"op": "replace", "path": "/instances", "value": 4}], client_ip="10.9.9.9")
    notifier = _notifier(store, receiver.url)
    notifier.scan()
    store.set_drift_action(drift.drift_id, action="corrected", status="resolved",
                           count_correction=True)
    sent = notifier.scan()
    notifier.scan()

    assert [n.transition for n in sent] == [notices.Transition.DRIFT_CORRECTED]
    assert len(receiver.bodies) == 2
    assert "drift corrected" in receiver.bodies[1]["text"]
    assert "drift correction" in receiver.texts()[1]


def test_drift_corrected_before_any_scan_is_announced_once_as_corrected(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    _applied(store)
    drift, _ = store.observe_drift(
        app_id=PORTAL, kind="scale", fingerprint="f1", policy="correct",
        patch=[{"op": "replace", "path": "/instances", "value": 4}])
    store.set_drift_action(drift.drift_id, action="corrected", status="resolved",
                           count_correction=True)
    notifier = _notifier(store, receiver.url)
    notifier.scan()
    notifier.scan()
    assert [json.loads(t)["text"] for t in receiver.texts()] == [
        f"reconciler: drift corrected: {PORTAL}"]


def test_flapping_is_announced_beside_the_detection(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    _applied(store)
    drift, _ = store.observe_drift(
        app_id=PORTAL, kind="scale", fingerprint="f1", policy="correct",
        patch=[{"op": "replace", "path": "/instances", "value": 4}])
    notifier = _notifier(store, receiver.url)
    notifier.scan()
    for _ in range(3):
        store.set_drift_action(drift.drift_id, action="corrected", count_correction=True)
    store.set_drift_action(drift.drift_id, action="flapping-stopped", status="flapping")
    sent = notifier.scan()
    assert [n.transition for n in sent] == [notices.Transition.FLAPPING]
    assert "corrected 3 times" in receiver.texts()[-1]
    why = {f["title"]: f["value"] for f in receiver.bodies[-1]["attachments"][0]["fields"]}["why"]
    assert why.endswith(f"reconciler.yaml:\nignore:\n  {PORTAL}:\n    - /instances"), why


def test_no_secret_value_leaves_in_any_notice(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    _applied(store)
    store.observe_drift(
        app_id=PORTAL, kind="config", fingerprint="f2", policy="report",
        patch=[{"op": "replace", "path": "/env/DB_PASSWORD", "value": OTHER_SECRET},
               {"op": "add", "path": "/env/API_TOKEN", "value": OTHER_SECRET},
               {"op": "replace", "path": "/env", "value": {"DB_PASSWORD": OTHER_SECRET}}])
    captured: list[tuple[str, str]] = []
    _notifier(store, receiver.url,
              capture=lambda message, level: captured.append((message, level))).scan()

    assert receiver.raw and captured
    everything = b"".join(receiver.raw).decode() + "".join(m for m, _ in captured)
    assert SECRET not in everything
    assert OTHER_SECRET not in everything
    assert "/env/DB_PASSWORD: \\\"***\\\" → \\\"***\\\"" in everything or \
        '/env/DB_PASSWORD: "***" → "***"' in everything


def test_rollback_and_quarantine_say_which_release_failed_and_whose_it_was(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    _applied(store)
    broken = "b" * 40
    store.record_revision(revision=broken, definitions={PORTAL: PORTAL_DEFINITION},
                          author="Bob Builder <bob@example.org>",
                          message="Release v8r2p46-broken\n\nlong body")
    run_id = store.start_run(revision=broken, trigger="poll", requested_by=None,
                             dry_run=False)
    change_id = store.record_deployment(
        run_id=run_id, app_id=PORTAL, action="update", revision=broken, deployment_id="d-2",
        version="2026-11-25T03:10:00.000Z", previous_version="2026-11-25T03:00:00.000Z",
        purpose="change", deadline_seconds=30,
        patch=[{"op": "replace", "path": "/container/docker/image",
                "value": "lhcbdirac:v8r2p46-broken"}])
    store.finish_change(change_id, outcome="rolled back", reason="deadline of 30s passed")
    store.record_rollback(
        run_id=run_id, app_id=PORTAL, from_version="2026-11-25T03:10:00.000Z",
        to_version="2026-11-25T03:00:00.000Z", reason="deadline of 30s passed",
        failure="Exited with status 3", stuck_step="step 1/1 (RestartApplication)",
        method="revert", outcome="succeeded", requested_by=None)
    store.quarantine(app_id=PORTAL, revision=broken, reason="rolled back: deadline passed")
    store.finish_run(run_id, outcome="rolled back", error=None, summary={})
    captured: list[tuple[str, str]] = []
    notifier = _notifier(store, receiver.url,
                         capture=lambda message, level: captured.append((message, level)))

    sent = notifier.scan()
    notifier.scan()

    assert sorted(n.transition for n in sent) == sorted(
        [notices.Transition.ROLLBACK_DONE, notices.Transition.QUARANTINED])
    assert len(receiver.bodies) == 2
    rollback = next(t for t in receiver.texts() if "rollback done" in t)
    assert "Bob Builder" in rollback
    assert "bbbbbbbbbb (Release v8r2p46-broken)" in rollback
    assert "Exited with status 3" in rollback
    assert "lhcbdirac:v8r2p46-broken" in rollback
    assert "long body" not in rollback
    assert {level for _, level in captured} == {"error", "warning"}


def _quarantined(store: records.RecordStore) -> None:
    _applied(store)
    store.quarantine(app_id=PORTAL, revision="a" * 40, reason="rolled back: deadline passed")


def test_a_notice_of_one_environment_names_it_in_text_fields_link_and_sentry_tag(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    """Several environments: each controller's notifier has its environment and the
    environment's own dashboard (``environments.environment_settings``)."""
    _quarantined(store)
    captured: list[tuple[str, str, dict[str, str]]] = []
    notifier = notify.Notifier(
        records=store, webhook_url=receiver.url, environment="cert",
        dashboard_url="https://reconciler.example.org/environments/cert",
        capture=lambda message, level, tags: captured.append((message, level, tags)))

    sent = notifier.scan()

    assert [n.environment for n in sent] == ["cert"]
    [body] = receiver.bodies
    assert body["text"] == f"reconciler: quarantined in cert: {PORTAL}"
    attachment = body["attachments"][0]
    assert attachment["fields"][0] == {"title": "environment", "value": "cert", "short": True}
    assert attachment["title_link"] == (
        "https://reconciler.example.org/environments/cert/apps/dirac-cert/web/portal")
    [(message, level, tags)] = captured
    assert message.splitlines()[:2] == [f"[reconciler] quarantined in cert: {PORTAL}",
                                        "environment: cert"]
    assert tags == {notify.SENTRY_ENVIRONMENT_TAG: "cert"}


def test_a_notice_of_the_one_environment_says_no_environment(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    _quarantined(store)
    captured: list[tuple[str, str]] = []
    _notifier(store, receiver.url,
              capture=lambda message, level: captured.append((message, level))).scan()

    [body] = receiver.bodies
    assert body["text"] == f"reconciler: quarantined: {PORTAL}"
    assert [f["title"] for f in body["attachments"][0]["fields"]] == [
        "what", "why", "who", "when"]
    assert "environment" not in captured[0][0]


def test_failed_sync_run_is_announced_with_its_error(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    run_id = store.start_run(revision="c" * 40, trigger="webhook", requested_by=None,
                             dry_run=False)
    store.finish_run(run_id, outcome="failed", error="Marathon: 503 from every URL",
                     summary={})
    ok = store.start_run(revision="c" * 40, trigger="poll", requested_by=None, dry_run=False)
    store.finish_run(ok, outcome="succeeded", error=None, summary={})
    sent = _notifier(store, receiver.url).scan()
    assert [n.key for n in sent] == [f"run:{run_id}:failed"]
    assert "Marathon: 503 from every URL" in receiver.texts()[0]


def test_retries_failing_alike_are_one_transition_until_a_success(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    """Marathon down: each retry records a failed run; on-call hears it once, and again
    only after it worked in between or failed differently."""
    def run(outcome: str, error: str | None = None, revision: str = "c" * 40) -> int:
        run_id = store.start_run(revision=revision, trigger="poll", requested_by=None,
                                 dry_run=False)
        store.finish_run(run_id, outcome=outcome, error=error, summary={})
        return run_id

    down = "Marathon unreachable: connection refused"
    first = run("failed", down)
    for _ in range(4):
        run("failed", down)
    notifier = _notifier(store, receiver.url)
    assert [n.key for n in notifier.scan()] == [f"run:{first}:failed"]
    other = run("failed", "Marathon: 422 Object is not valid")
    run("succeeded")
    again = run("failed", down)
    run("failed", down)
    assert [n.key for n in notifier.scan()] == [f"run:{other}:failed", f"run:{again}:failed"]
    assert len(receiver.bodies) == 3


def test_old_records_are_not_announced(store: records.RecordStore,
                                       receiver: webhooks.Receiver) -> None:
    store.observe_drift(app_id=PORTAL, kind="scale", fingerprint="f1", policy="report",
                        patch=[{"op": "replace", "path": "/instances", "value": 5}])
    later = notify.Notifier(records=store, webhook_url=receiver.url,
                            clock=lambda: time.time() + 7200, lookback=3600)
    assert later.scan() == []
    assert receiver.bodies == []


def test_an_unreachable_webhook_is_logged_not_raised_and_not_sent_twice_by_another_process(
        store: records.RecordStore, caplog: pytest.LogCaptureFixture) -> None:
    store.observe_drift(app_id=PORTAL, kind="scale", fingerprint="f1", policy="report",
                        patch=[{"op": "replace", "path": "/instances", "value": 5}])
    url = f"http://127.0.0.1:{free_port()}/hooks/secret-hook-token"
    sent = _notifier(store, url).scan()
    assert len(sent) == 1
    assert "not delivered" in caplog.text
    assert "secret-hook-token" not in caplog.text
    assert _notifier(store, url).scan() == []


def test_a_failed_delivery_is_retried_with_backoff_until_it_goes_through(
        store: records.RecordStore) -> None:
    flaky = webhooks.Receiver(failures=2)
    now = [time.time()]
    try:
        store.observe_drift(app_id=PORTAL, kind="scale", fingerprint="f1", policy="report",
                            patch=[{"op": "replace", "path": "/instances", "value": 5}])
        notifier = _notifier(store, flaky.url, clock=lambda: now[0])
        assert len(notifier.scan()) == 1 and flaky.bodies == []  # 503: kept for a retry
        notifier.scan()
        assert len(flaky.raw) == 1, "retried before its backoff was over"
        now[0] += notify.RETRY_BASE
        notifier.scan()
        assert len(flaky.raw) == 2 and flaky.bodies == []  # 503 again: waits twice as long
        now[0] += notify.RETRY_BASE
        notifier.scan()
        assert len(flaky.raw) == 2
        now[0] += notify.RETRY_BASE
        notifier.scan()
        assert len(flaky.bodies) == 1 and "drift detected" in flaky.texts()[0]
        now[0] += notify.RETRY_CAP
        notifier.scan()
        assert len(flaky.bodies) == 1  # delivered once, then never again
    finally:
        flaky.close()


def test_turning_notifications_on_announces_nothing_from_before(
        tmp_path: Path, receiver: webhooks.Receiver) -> None:
    store = records.open_store(tmp_path / "state")
    try:
        store.observe_drift(app_id=PORTAL, kind="scale", fingerprint="old", policy="report",
                            patch=[{"op": "replace", "path": "/instances", "value": 5}])
        time.sleep(0.01)
        assert _notifier(store, receiver.url).scan() == []  # turned on now: no replay
        store.resolve_drift(app_id=PORTAL, action="gone")
        store.observe_drift(app_id=PORTAL, kind="scale", fingerprint="new", policy="report",
                            patch=[{"op": "replace", "path": "/instances", "value": 6}])
        assert len(_notifier(store, receiver.url).scan()) == 1
        assert len(receiver.bodies) == 1 and "6" in receiver.texts()[0]
    finally:
        store.close()


def test_webhook_refusal_is_logged(store: records.RecordStore,
                                   caplog: pytest.LogCaptureFixture) -> None:
    refusing = webhooks.Receiver(status=403)
    try:
        store.observe_drift(app_id=PORTAL, kind="scale", fingerprint="f1", policy="report",
                            patch=[{"op": "replace", "path": "/instances", "value": 5}])
        _notifier(store, refusing.url).scan()
    finally:
        refusing.close()
    assert len(refusing.bodies) == 1
    assert "HTTP 403" in caplog.text


def test_webhook_url_from_environment_or_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "hook"
    secret_file.write_text("https://chat.example.org/hooks/xyz\n")
    assert config.load({}).notify_webhook_url is None
    assert config.load(
        {"RECONCILER_NOTIFY_WEBHOOK_URL": "http://h/x"}).notify_webhook_url == "http://h/x"
    assert config.load(
        {"RECONCILER_NOTIFY_WEBHOOK_URL_FILE": str(secret_file)}).notify_webhook_url == (
        "https://chat.example.org/hooks/xyz")
    with pytest.raises(config.BadConfiguration,
                       match="RECONCILER_NOTIFY_WEBHOOK_URL_FILE=.*cannot read"):
        config.load({"RECONCILER_NOTIFY_WEBHOOK_URL_FILE": str(tmp_path / "missing")})
    with pytest.raises(config.BadConfiguration, match="http") as refused:
        config.load({"RECONCILER_NOTIFY_WEBHOOK_URL": "ftp://h/x"})
    assert "ftp://h/x" not in str(refused.value)  # the URL holds a token


def test_known_secrets_and_url_credentials_are_scrubbed_from_the_text(
        store: records.RecordStore, receiver: webhooks.Receiver) -> None:
    api_token = "api-token-0123456789"
    run_id = store.start_run(revision="d" * 40, trigger="manual", requested_by=None,
                             dry_run=False)
    store.finish_run(run_id, outcome="failed", summary={},
                     error=f"Marathon: 401 at https://svc:{SECRET}@marathon.example.org "
                           f"with token {api_token}")
    captured: list[tuple[str, str]] = []
    _notifier(store, receiver.url, secrets=[api_token],
              capture=lambda message, level: captured.append((message, level))).scan()
    everything = b"".join(receiver.raw).decode() + "".join(m for m, _ in captured)
    assert "401" in everything
    assert SECRET not in everything and api_token not in everything
    assert "https://***@marathon.example.org" in everything


@pytest.mark.integration
def test_the_running_controller_announces_a_drift_once_without_secrets(
        tmp_path: Path, receiver: webhooks.Receiver) -> None:
    """``reconciler run`` with the webhook set: someone edits the portal's env in Marathon."""
    leaked = "new-db-password-typed-by-hand"
    stack = browser_stack.Stack.start(
        tmp_path, extra_env={"RECONCILER_NOTIFY_WEBHOOK_URL": receiver.url})
    try:
        stack.wait_for_states({browser_stack.PORTAL: "in sync"})
        requests.put(f"{stack.marathon}/v2/apps{browser_stack.PORTAL}", params={"force": "true"},
                     json={"env": {"DIRAC_SETUP": "LHCb-Certification",
                                   "DB_PASSWORD": leaked}}, timeout=10).raise_for_status()
        stack.wait_for_states({browser_stack.PORTAL: "drifted"})
        deadline = time.monotonic() + 30
        while not any("drift detected" in t for t in receiver.texts()):
            assert time.monotonic() < deadline, f"no drift notice: {receiver.texts()}"
            time.sleep(0.2)
        time.sleep(3)  # a few more drift checks and scans: still one message
    finally:
        stack.stop()
    drift_messages = [b for b in receiver.bodies if "drift" in b["text"]]
    assert len(drift_messages) == 1, receiver.texts()
    fields = {f["title"]: f["value"] for f in drift_messages[0]["attachments"][0]["fields"]}
    assert fields["what"] == '/env/DB_PASSWORD: "***" → "***"'
    assert "127.0.0.1" in fields["who"]
    everything = b"".join(receiver.raw).decode()
    assert leaked not in everything and "hunter2" not in everything


def sent_to_sentry(store: records.RecordStore, *, environment: str | None = None) -> str:
    """What a notifier wired as the controller wires it (capture=telemetry.capture_message)
    sends a real Sentry client, received by a real HTTP endpoint: the envelopes' text."""
    sentry = webhooks.Receiver(parse=False)
    host = sentry.url.split("/")[2]
    try:
        telemetry.init_sentry(f"http://publickey@{host}/42")
        notify.Notifier(records=store, webhook_url=None, environment=environment,
                        capture=telemetry.capture_message).scan()
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close()
        # A client without a DSN and without the default integrations: sentry_sdk.init()
        # alone installs them, and its stdlib one patches subprocess for the rest of the
        # worker's life (a later test's git call crashed inside that patch: a segfault).
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)
        sentry.close()
    return b"".join(sentry.raw).decode()


def test_a_sentry_test_leaves_the_standard_library_unpatched(
        store: records.RecordStore) -> None:
    sent_to_sentry(store)
    assert subprocess.Popen.communicate.__module__ == "subprocess"
    assert http.client.HTTPConnection.putrequest.__module__ == "http.client"


def test_notices_reach_sentry_through_telemetry(store: records.RecordStore) -> None:
    store.observe_drift(app_id=PORTAL, kind="config", fingerprint="f1", policy="report",
                        patch=[{"op": "replace", "path": "/env/DB_PASSWORD",
                                "value": OTHER_SECRET}], client_ip="10.0.0.5")
    envelopes = sent_to_sentry(store)
    assert f"drift detected: {PORTAL}" in envelopes
    assert '"level":"warning"' in envelopes.replace(" ", "")
    assert OTHER_SECRET not in envelopes


def test_a_notice_of_an_environment_reaches_sentry_with_its_environment_tag(
        store: records.RecordStore) -> None:
    _quarantined(store)
    envelopes = sent_to_sentry(store, environment="prod").replace(" ", "")
    assert f"quarantinedinprod:{PORTAL}" in envelopes
    assert f'"{notify.SENTRY_ENVIRONMENT_TAG}":"prod"' in envelopes


@pytest.mark.integration
def test_the_running_controller_announces_a_corrected_drift_once(
        tmp_path: Path, receiver: webhooks.Receiver) -> None:
    """Policy ``correct``: the file catalog scaled by hand is scaled back and people told."""
    app_id = browser_stack.CATALOG
    stack = browser_stack.Stack.start(
        tmp_path, extra_env={"RECONCILER_NOTIFY_WEBHOOK_URL": receiver.url,
                             "RECONCILER_PUBLIC_URL": "https://reconciler.example.org/ops/"})
    try:
        stack.wait_for_states({app_id: "in sync"})
        stack.scale_in_marathon(app_id, 3)
        deadline = time.monotonic() + 60
        while not any("drift corrected" in t for t in receiver.texts()):
            assert time.monotonic() < deadline, f"no correction notice: {receiver.texts()}"
            time.sleep(0.2)
        assert stack.live_instances(app_id) == 1
        time.sleep(3)  # more drift checks and scans: nothing new
    finally:
        stack.stop()
    texts = [b["text"] for b in receiver.bodies]
    assert texts.count(f"reconciler: drift corrected: {app_id}") == 1, texts
    assert texts.count(f"reconciler: drift detected: {app_id}") <= 1, texts
    corrected = next(b for b in receiver.bodies if "drift corrected" in b["text"])
    fields = {f["title"]: f["value"] for f in corrected["attachments"][0]["fields"]}
    assert fields["what"] == "/instances: 1 → 3"
    assert "drift correction" in fields["why"]
    assert corrected["attachments"][0]["title_link"] == (
        "https://reconciler.example.org/ops/apps/" + app_id.lstrip("/"))


@pytest.mark.integration
def test_the_running_controller_announces_a_rollback_with_its_release_and_author(
        tmp_path: Path, receiver: webhooks.Receiver) -> None:
    """A broken image committed by Carol: rolled back, quarantined, each announced once."""
    app_id = browser_stack.CATALOG
    settings = {**browser_stack.SETTINGS, "deadlines": {"/dirac/datamanagement": 6}}
    stack = browser_stack.Stack.start(
        tmp_path, settings=settings,
        extra_env={"RECONCILER_NOTIFY_WEBHOOK_URL": receiver.url})
    try:
        stack.wait_for_states({app_id: "in sync"})
        path = stack.repo / (app_id.strip("/") + ".yaml")
        path.write_text(path.read_text().replace("image: dirac",
                                                 "image: lhcbdirac:v8r2p46-broken"))
        sha = stack.commit("Try v8r2p46 on the file catalog", author="Carol Tester",
                           email="carol@example.org")
        deadline = time.monotonic() + 90
        while not {"rollback done", "quarantined"} <= {
                b["text"].split(": ")[1] for b in receiver.bodies}:
            assert time.monotonic() < deadline, f"no rollback notices: {receiver.texts()}"
            time.sleep(0.3)
        time.sleep(2)
    finally:
        stack.stop()
    texts = [b["text"] for b in receiver.bodies]
    assert texts.count(f"reconciler: rollback done: {app_id}") == 1, texts
    assert texts.count(f"reconciler: quarantined: {app_id}") == 1, texts
    rollback = next(b for b in receiver.bodies if "rollback done" in b["text"])
    fields = {f["title"]: f["value"] for f in rollback["attachments"][0]["fields"]}
    assert "Carol Tester" in fields["who"]
    assert f"{sha[:10]} (Try v8r2p46 on the file catalog) failed" in fields["why"]
    assert '/container/docker/image → "lhcbdirac:v8r2p46-broken"' in fields["what"]
