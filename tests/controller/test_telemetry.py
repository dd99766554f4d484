"""Telemetry: JSON log lines with secrets masked, metrics on their own registry."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from reconciler.shell import telemetry


def test_log_lines_are_json_with_fields_and_secrets_masked() -> None:
    telemetry.set_secrets(["tok-123456"])
    try:
        record = logging.LogRecord("reconciler.test", logging.WARNING, __file__, 1,
                                   "git poll failed with tok-123456", None, None)
        record.fields = {"revision": "abc", "url": "https://x:tok-123456@h"}
        line = telemetry.JsonFormatter().format(record)
    finally:
        telemetry.set_secrets([])
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["revision"] == "abc"
    assert "tok-123456" not in line and "***" in entry["event"]


def test_an_exception_is_one_line_with_its_traceback_under_error() -> None:
    telemetry.set_secrets(["tok-654321"])
    try:
        try:
            raise RuntimeError("Marathon said tok-654321")
        except RuntimeError:
            record = logging.LogRecord("reconciler.test", logging.ERROR, __file__, 1,
                                       "reconcile failed", None, sys.exc_info())
        record.color_message = "\x1b[31mreconcile failed\x1b[0m"  # as uvicorn adds
        line = telemetry.JsonFormatter().format(record)
    finally:
        telemetry.set_secrets([])
    assert "\n" not in line
    entry = json.loads(line)
    assert list(entry) == ["at", "level", "logger", "event", "error"]
    assert entry["at"].endswith("+00:00") and entry["level"] == "error"
    assert "RuntimeError: Marathon said ***" in entry["error"]


def test_metrics_are_exposed_under_reconciler_names() -> None:
    telemetry.GIT_REQUESTS.inc()
    text, content_type = telemetry.metrics_text()
    assert content_type.startswith("text/plain")
    assert b"reconciler_git_requests_total" in text
    assert b"reconciler_reconcile_duration_seconds_bucket" in text or \
        b"reconciler_reconcile_duration_seconds" in text
    assert b"python_gc" not in text  # not the process-wide default registry


@pytest.mark.parametrize("value", ["a tok-987654 b", {"m": ["tok-987654"]}])
def test_sentry_events_are_scrubbed(value: object) -> None:
    telemetry.set_secrets(["tok-987654"])
    try:
        assert "tok-987654" not in json.dumps(telemetry.scrub_value(value))
    finally:
        telemetry.set_secrets([])


def test_the_app_series_are_valid_exposition_text_with_hostile_app_ids() -> None:
    """Rendered once per status snapshot, not by prometheus_client: its parser must agree."""
    from prometheus_client.parser import text_string_to_metric_families

    from reconciler.core import model, status
    from reconciler.shell import telemetry

    odd = '/dirac/we"ird\\app\nid'
    drifted = status.Condition(type=status.ConditionType.DRIFTED, since=None,
                               reason="ManualChange", message="scaled")
    row = status.AppStatus(
        app_id=odd, state=model.AppState.DRIFTED, sync=status.SyncStatus.OUT_OF_SYNC,
        health="Healthy", conditions=(drifted,),
        since=None, revision=None, cause=None, image=None, image_tag=None, healthy=1,
        instances=1, open_drifts=1, quarantine=None)
    telemetry.publish_app_statuses([row])
    text, _ = telemetry.metrics_text()
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    info = families["reconciler_app_info"].samples
    assert [(s.labels["app"], s.labels["state"], s.value) for s in info] == [
        (odd, "drifted", 1.0)]
    condition = families["reconciler_app_condition"].samples
    assert [(s.labels["app"], s.labels["condition"]) for s in condition] == [(odd, "Drifted")]
    telemetry.publish_app_statuses([])


def test_publishing_again_replaces_the_series_with_the_rows_as_they_are_now() -> None:
    """The status board publishes every second or so during a release, most rows the very
    objects they were: the series are the rows given, in their order, not those before."""
    from prometheus_client.parser import text_string_to_metric_families

    from reconciler.core import model, status
    from reconciler.shell import telemetry

    def row(app_id: str, state: model.AppState) -> status.AppStatus:
        drifted = status.Condition(type=status.ConditionType.DRIFTED, since=None,
                                   reason="ManualChange", message="scaled")
        return status.AppStatus(
            app_id=app_id, state=state, sync=status.SyncStatus.SYNCED, health="Healthy",
            conditions=(drifted,) if state is model.AppState.DRIFTED else (), since=None,
            revision=None, cause=None, image=None, image_tag=None, healthy=1, instances=1,
            open_drifts=0, quarantine=None)

    def published() -> tuple[list[tuple[str, str]], list[str]]:
        text = telemetry.metrics_text()[0].decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        info = [(s.labels["app"], s.labels["state"]) for s in
                families["reconciler_app_info"].samples if s.labels.get("environment") == "t"]
        conditions = [s.labels["app"] for s in families["reconciler_app_condition"].samples
                      if s.labels.get("environment") == "t"]
        return info, conditions

    web = row("/dirac/web", model.AppState.IN_SYNC)
    telemetry.publish_app_statuses([web, row("/dirac/fts", model.AppState.IN_SYNC)],
                                   environment="t")
    try:
        telemetry.publish_app_statuses([web, row("/dirac/fts", model.AppState.DRIFTED),
                                        row("/dirac/rms", model.AppState.IN_SYNC)],
                                       environment="t")
        assert published() == ([("/dirac/web", "in sync"), ("/dirac/fts", "drifted"),
                                ("/dirac/rms", "in sync")], ["/dirac/fts"])
        telemetry.publish_app_statuses([row("/dirac/fts", model.AppState.IN_SYNC)],
                                       environment="t")
        assert published() == ([("/dirac/fts", "in sync")], [])
    finally:
        telemetry.withdraw_app_statuses("t")


def test_two_environments_running_the_same_app_id_publish_distinct_series() -> None:
    """Several environments: each status board publishes its own environment's series; the
    same app id in cert and prod must not be two identical series (invalid exposition)."""
    from prometheus_client.parser import text_string_to_metric_families

    from reconciler.core import model, status
    from reconciler.shell import telemetry

    def row(state: model.AppState) -> status.AppStatus:
        return status.AppStatus(
            app_id="/dirac/web/portal", state=state, sync=status.SyncStatus.SYNCED,
            health="Healthy", conditions=(), since=None, revision=None, cause=None,
            image=None, image_tag=None, healthy=1, instances=1, open_drifts=0,
            quarantine=None)

    def apps_by_state(text: str) -> dict[str, float]:
        return {s.labels["state"]: s.value for f in text_string_to_metric_families(text)
                if f.name == "reconciler_apps" for s in f.samples}

    # Other tests of this worker may have left the one environment's series: counted apart.
    before = apps_by_state(telemetry.metrics_text()[0].decode())
    telemetry.publish_app_statuses([row(model.AppState.IN_SYNC)], environment="cert")
    telemetry.publish_app_statuses([row(model.AppState.DRIFTED)], environment="prod")
    try:
        text = telemetry.metrics_text()[0].decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        info = families["reconciler_app_info"].samples
        assert sorted((s.labels["environment"], s.labels["state"]) for s in info) == [
            ("cert", "in sync"), ("prod", "drifted")]
        by_environment = {(s.labels["environment"], s.labels["state"]): s.value
                          for s in families["reconciler_environment_apps"].samples}
        assert by_environment[("cert", "in sync")] == 1.0
        assert by_environment[("prod", "drifted")] == 1.0
        assert by_environment[("prod", "in sync")] == 0.0
        apps = apps_by_state(text)  # the sum of every environment's
        assert apps["in sync"] - before.get("in sync", 0) == 1.0
        assert apps["drifted"] - before.get("drifted", 0) == 1.0
    finally:
        telemetry.withdraw_app_statuses("cert")
        telemetry.withdraw_app_statuses("prod")
    text = telemetry.metrics_text()[0].decode()
    assert 'environment="cert"' not in text and 'environment="prod"' not in text
