"""Drift classification between the last applied desired definition and live (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.core import drift, model

DESIRED: dict[str, Any] = {
    "id": "/dirac/web", "instances": 2, "cpus": 0.1, "mem": 64,
    "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"},
                  "portMappings": [{"containerPort": 8443, "hostPort": 0, "servicePort": 0}]},
    "networks": [{"mode": "container/bridge"}],
    "env": {"DB_PASSWORD": "hunter2", "SETUP": "cert"},
}


def live_of(**changes: Any) -> dict[str, Any]:
    """What Marathon returns: defaults filled in, a service port chosen, then ``changes``."""
    live = {**DESIRED, "version": "2026-01-01T00:00:00.000Z", "disk": 0, "gpus": 0,
            "backoffSeconds": 1, "tasksRunning": 2,
            "container": {**DESIRED["container"], "portMappings": [
                {"containerPort": 8443, "hostPort": 0, "servicePort": 10001,
                 "protocol": "tcp"}]}}
    live.update(changes)
    return live


def test_filled_in_defaults_and_chosen_ports_are_no_drift() -> None:
    assert drift.find_drift("/dirac/web", desired=DESIRED, live=live_of()) is None


def test_a_scale_is_scale_drift_with_a_desired_to_live_patch() -> None:
    found = drift.find_drift("/dirac/web", desired=DESIRED, live=live_of(instances=5))
    assert found is not None
    assert found.kind is drift.DriftKind.SCALE
    assert found.patch == ({"op": "replace", "path": "/instances", "value": 5},)
    assert found.pointers == ("/instances",)


def test_a_config_change_is_config_drift_and_secrets_are_masked() -> None:
    live = live_of(env={"DB_PASSWORD": "stolen-value", "SETUP": "cert"}, mem=128)
    found = drift.find_drift("/dirac/web", desired=DESIRED, live=live)
    assert found is not None and found.kind is drift.DriftKind.CONFIG
    assert "stolen-value" not in str(found.patch)
    assert set(found.pointers) == {"/env/DB_PASSWORD", "/mem"}


def test_ignored_pointers_are_never_drift() -> None:
    assert drift.find_drift("/dirac/web", desired=DESIRED, live=live_of(instances=7),
                            ignore=("/instances",)) is None


def test_same_drift_same_fingerprint_other_drift_other_fingerprint() -> None:
    one = drift.find_drift("/dirac/web", desired=DESIRED, live=live_of(instances=5))
    again = drift.find_drift("/dirac/web", desired=DESIRED, live=live_of(instances=5))
    other = drift.find_drift("/dirac/web", desired=DESIRED, live=live_of(instances=6))
    assert one and again and other
    assert one.fingerprint == again.fingerprint != other.fingerprint


def test_flapping_after_threshold_corrections_with_a_suggested_ignore_rule() -> None:
    assert not drift.is_flapping(2, threshold=3)
    assert drift.is_flapping(3, threshold=3)
    rule = drift.suggested_ignore("/dirac/web", ["/instances",
                                                 "/container/portMappings/0/hostPort"])
    assert rule.splitlines() == ["ignore:", "  /dirac/web:", "    - /container/portMappings",
                                 "    - /instances"]


@pytest.mark.parametrize(("policy", "status", "quarantined", "corrections", "expected"), [
    (model.DriftPolicy.CORRECT, model.DriftStatus.OPEN, False, 0, drift.Response.CORRECT),
    (model.DriftPolicy.CORRECT, model.DriftStatus.OPEN, False, 2, drift.Response.CORRECT),
    (model.DriftPolicy.CORRECT, model.DriftStatus.OPEN, False, 3, drift.Response.STOP_FLAPPING),
    (model.DriftPolicy.CORRECT, model.DriftStatus.FLAPPING, False, 0, drift.Response.LEAVE),
    (model.DriftPolicy.REPORT, model.DriftStatus.OPEN, False, 9, drift.Response.REPORT),
    (model.DriftPolicy.CORRECT, model.DriftStatus.OPEN, True, 0,
     drift.Response.REPORT_QUARANTINED),
    (model.DriftPolicy.REPORT, model.DriftStatus.OPEN, True, 0,
     drift.Response.REPORT_QUARANTINED),
])
def test_drift_policy_corrects_reports_or_stops_a_fight(
        policy: model.DriftPolicy, status: model.DriftStatus, quarantined: bool,
        corrections: int, expected: drift.Response) -> None:
    assert drift.respond(policy=policy, status=status, quarantined=quarantined,
                         corrections_in_window=corrections, flap_threshold=3) is expected
