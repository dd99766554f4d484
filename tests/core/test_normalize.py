"""Normalizers one by one: the behaviours a golden pair does not isolate."""

from __future__ import annotations

from reconciler.core import diff as diffing
from reconciler.core import model
from reconciler.core import normalize as normalizing


def bridged(service_port: int, *, instances: int = 1) -> model.JSON:
    return {"id": "/a", "instances": instances,
            "container": {"docker": {"image": "x:1"},
                          "portMappings": [{"containerPort": 80, "servicePort": service_port}]},
            "networks": [{"mode": "container/bridge"}]}


def test_docker_bridge_network_becomes_networks_and_port_mappings_move_out() -> None:
    legacy = {"id": "a", "container": {"docker": {"image": "x:1", "network": "BRIDGE",
                                                  "portMappings": [{"containerPort": 80}]}}}
    normal = normalizing.normalize_app(legacy)
    assert normal["id"] == "/a"
    assert normal["networks"] == [{"mode": "container/bridge"}]
    assert "network" not in normal["container"]["docker"]
    assert "portMappings" not in normal["container"]["docker"]
    assert normal["container"]["portMappings"] == [
        {"containerPort": 80, "hostPort": 0, "servicePort": 0, "protocol": "tcp",
         "labels": {}}]
    assert normal == normalizing.normalize_app(bridged(0))


def test_host_networking_gets_one_default_port_and_no_port_mappings() -> None:
    normal = normalizing.normalize_app({"id": "/a", "cmd": "x"})
    assert normal["networks"] == [{"mode": "host"}]
    assert normal["portDefinitions"] == [{"port": 0, "protocol": "tcp", "name": "default",
                                          "labels": {}}]


def test_an_assigned_service_port_is_no_difference_for_a_port_declared_zero() -> None:
    desired = model.DesiredApp(app_id="/a", definition=bridged(0), source_path="a.yaml")
    assert diffing.diff_app(desired, bridged(10042)).action is model.Action.NOOP


def test_a_fixed_service_port_must_match() -> None:
    desired = model.DesiredApp(app_id="/a", definition=bridged(10100), source_path="a.yaml")
    diff = diffing.diff_app(desired, bridged(10042))
    assert diff.action is model.Action.UPDATE


def test_ignored_pointers_are_removed_from_both_sides() -> None:
    desired = model.DesiredApp(app_id="/a", definition=bridged(0, instances=1),
                               source_path="a.yaml")
    live = bridged(0, instances=9)
    assert diffing.diff_app(desired, live).action is model.Action.SCALE
    assert diffing.diff_app(desired, live, ignore=("/instances",)).action is model.Action.NOOP


def test_without_pointers_handles_escapes_lists_and_absent_paths() -> None:
    app = {"labels": {"a/b": "1", "c": "2"}, "list": [1, 2, 3]}
    assert normalizing.without_pointers(app, ["/labels/a~1b", "/list/1", "/nope/x"]) == {
        "labels": {"c": "2"}, "list": [1, 3]}
    assert app["labels"] == {"a/b": "1", "c": "2"}


def test_relative_dependencies_resolve_against_the_group() -> None:
    normal = normalizing.normalize_app(
        {"id": "/g/sub/app", "cmd": "x", "dependencies": ["../other", "peer", "/abs"]})
    assert normal["dependencies"] == ["/abs", "/g/other", "/g/sub/peer"]


def test_numbers_in_float_form_are_equal() -> None:
    a = normalizing.normalize_app({"id": "/a", "cmd": "x", "mem": 512, "cpus": 1})
    b = normalizing.normalize_app({"id": "/a", "cmd": "x", "mem": 512.0, "cpus": 1.0})
    assert a == b
    assert diffing.field_changes(a, b) == ()



def test_health_checks_as_marathon_1_11_writes_them_are_no_difference() -> None:
    # Marathon 1.11 (raml/HealthCheckConversion.scala, appHealthCheckWrites) writes ipProtocol
    # for every protocol, no path unless given, and delaySeconds 15 for its own HTTP and TCP
    # checks whatever was sent: none of that is a change made in Marathon.
    desired_checks = [{"protocol": "HTTP", "portIndex": 0, "delaySeconds": 5},
                      {"protocol": "COMMAND", "command": {"value": "true"}}]
    live_checks = [
        {"protocol": "HTTP", "portIndex": 0, "ipProtocol": "IPv4", "ignoreHttp1xx": False,
         "gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20,
         "maxConsecutiveFailures": 3, "delaySeconds": 15},
        {"protocol": "COMMAND", "command": {"value": "true"}, "ipProtocol": "IPv4",
         "gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20,
         "maxConsecutiveFailures": 3, "delaySeconds": 15}]
    desired = model.DesiredApp(app_id="/a", source_path="a.yaml", definition={
        "id": "/a", "cmd": "x", "healthChecks": desired_checks})
    live = {"id": "/a", "cmd": "x", "healthChecks": live_checks}
    assert diffing.diff_app(desired, live).action is model.Action.NOOP
