"""The dev cluster's Marathon app rules: defaults, validation, service ports, updates, groups.

Pure and fast. Expected values come from Marathon's own RAML types and API examples
(shared/marathon-reference, read at test time) or from golden files in ``golden/``:
``<case>-request.json`` is what a client sends (or a ``$reference`` into Marathon's examples),
``<case>-filled.json`` what the dev cluster stores and returns for it. Regenerate the filled
files with ``UPDATE_GOLDEN=1`` and review the diff by hand against the RAML defaults.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.devcluster import changes, defaults, groups, ids, serviceports, validation

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name.removesuffix("-request.json") for p in GOLDEN.glob("*-request.json"))
DEPRECATED = {"ports", "uris", "ipAddress"}
"""Fields Marathon 1.5+ reads but never writes back."""
VERSION_DIFFERENCES = {"maxLaunchDelaySeconds"}
"""3600 in the old examples, 300 in the RAML of the last Marathon (the dev cluster's choice)."""
JSON = dict[str, Any]


def request_of(case: str, reference: Path) -> Any:
    data = json.loads((GOLDEN / f"{case}-request.json").read_text())
    if isinstance(data, dict) and "$reference" in data:
        return json.loads((reference / data["$reference"]).read_text())
    return data


def fill_all(request: Any) -> Any:
    allocator = serviceports.ServicePortAllocator()
    if isinstance(request, list):
        return [defaults.fill_defaults(app, allocator=allocator) for app in request]
    return defaults.fill_defaults(request, allocator=allocator)


def raml_defaults(reference: Path, library: str, type_name: str) -> JSON:
    """``default`` of every property of one RAML type (``name?`` keys lose their ``?``)."""
    document = yaml.safe_load((reference / "raml/v2/types" / library).read_text())
    properties = document["types"][type_name]["properties"]
    return {
        name.rstrip("?"): spec["default"]
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec
    }


def minimal(**fields: Any) -> JSON:
    return {"id": "/dirac/fts-manager", "cmd": "sleep 100", **fields}


def errors_at(details: list[JSON], path: str) -> list[str]:
    return [e for d in details if d["path"] == path for e in d["errors"]]


# -- golden files ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_filled_app_matches_golden(case: str, marathon_reference: Path) -> None:
    request = request_of(case, marathon_reference)
    for app in request if isinstance(request, list) else [request]:
        assert validation.validate_app(app) == [], f"{case}: the request itself must be valid"
    filled = fill_all(request)
    golden = GOLDEN / f"{case}-filled.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(filled, indent=2) + "\n")
    assert filled == json.loads(golden.read_text())


def test_golden_cases_exist() -> None:
    assert {"minimal-cmd", "docker-bridge-legacy", "apps-create"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_filled_app_is_a_fixed_point(case: str, marathon_reference: Path) -> None:
    """Sending back what GET returned (as marathon-deploy and the controller do) changes nothing."""
    request = request_of(case, marathon_reference)
    allocator = serviceports.ServicePortAllocator()
    for app in request if isinstance(request, list) else [request]:
        filled = defaults.fill_defaults(app, allocator=allocator)
        assert validation.validate_app(filled) == []
        again = defaults.fill_defaults(filled, allocator=allocator, previous=filled)
        assert again == filled
        assert changes.change_kind(filled, again) == "none"


# -- defaults straight from Marathon's RAML and examples ------------------------------------


def test_top_level_defaults_are_the_app_raml_defaults(marathon_reference: Path) -> None:
    defaults = raml_defaults(marathon_reference, "app.raml", "App")
    assert len(defaults) >= 10
    filled = fill_all({"id": "/a", "cmd": "sleep 1"})
    assert {k: filled[k] for k in defaults} == defaults


def test_upgrade_strategy_defaults_keep_every_instance_up(marathon_reference: Path) -> None:
    filled = fill_all({"id": "/a", "cmd": "sleep 1"})
    assert filled["upgradeStrategy"] == {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}


@pytest.mark.parametrize(
    "protocol", ["HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"]
)
def test_health_check_defaults_are_the_raml_defaults(
    protocol: str, marathon_reference: Path
) -> None:
    defaults = raml_defaults(marathon_reference, "healthCheck.raml", "AppHealthCheck")
    check: JSON = {"protocol": protocol}
    if protocol == "COMMAND":
        check["command"] = {"value": "true"}
    [filled] = fill_all(minimal(healthChecks=[check]))["healthChecks"]
    timing = ("gracePeriodSeconds", "intervalSeconds", "timeoutSeconds",
              "maxConsecutiveFailures", "delaySeconds")
    assert {k: filled[k] for k in timing} == {k: defaults[k] for k in timing}
    assert filled["protocol"] == protocol
    # raml/HealthCheckConversion.scala (appHealthCheckWrites): ipProtocol is written for every
    # protocol, a path only when one was given, ignoreHttp1xx only for HTTP and HTTPS.
    assert filled["ipProtocol"] == defaults["ipProtocol"]
    assert "path" not in filled
    assert ("ignoreHttp1xx" in filled) == (protocol in ("HTTP", "HTTPS"))
    if protocol in ("HTTP", "HTTPS"):
        assert filled["ignoreHttp1xx"] is False
    if protocol == "COMMAND":
        assert "portIndex" not in filled
    else:
        assert filled["portIndex"] == 0


def test_health_checks_get_a_port_index_only_when_the_app_has_ports() -> None:
    # api/v2/AppNormalization.scala: normalizeHealthChecks runs on create only for an app with
    # port definitions or port mappings.
    portless = fill_all(minimal(portDefinitions=[], healthChecks=[{"protocol": "TCP"}]))
    assert portless["healthChecks"] == [{
        "gracePeriodSeconds": 300, "intervalSeconds": 60, "maxConsecutiveFailures": 3,
        "protocol": "TCP", "ipProtocol": "IPv4", "timeoutSeconds": 20, "delaySeconds": 15}]
    ported = fill_all(minimal(healthChecks=[{"protocol": "TCP"}]))
    assert ported["healthChecks"][0]["portIndex"] == 0


def test_marathon_checks_are_written_with_the_default_delay() -> None:
    # HealthCheckConversion.appHealthCheckWrites: MarathonHttpHealthCheck and
    # MarathonTcpHealthCheck have no delay; create() writes HealthCheck.DefaultDelay.
    app = fill_all(minimal(healthChecks=[{"protocol": "HTTP", "delaySeconds": 3},
                                          {"protocol": "MESOS_HTTP", "delaySeconds": 3}]))
    assert [c["delaySeconds"] for c in app["healthChecks"]] == [15, 3]


def test_nested_defaults_are_the_raml_defaults(marathon_reference: Path) -> None:
    app = fill_all(minimal(
        fetch=[{"uri": "https://example.org/dirac.tar.gz"}],
        readinessChecks=[{"portName": "default"}],
    ))
    assert app["fetch"] == [{"uri": "https://example.org/dirac.tar.gz",
                             **raml_defaults(marathon_reference, "artifact.raml", "Artifact")}]
    readiness = raml_defaults(marathon_reference, "readinessCheck.raml", "ReadinessCheck")
    # The RAML cannot state this list default; Marathon's ReadinessCheck model says [200].
    assert app["readinessChecks"] == [
        {**readiness, "portName": "default", "httpStatusCodesForReady": [200]}]
    assert app["unreachableStrategy"] == raml_defaults(
        marathon_reference, "unreachableStrategy.raml", "UnreachableEnabled")
    assert app["killSelection"] == "YOUNGEST_FIRST"


def test_docker_defaults_are_the_raml_defaults(marathon_reference: Path) -> None:
    docker_defaults = raml_defaults(marathon_reference, "appContainer.raml", "DockerContainer")
    app = fill_all({"id": "/web", "container": {"docker": {"image": "lhcbdirac:v8r2p44"}}})
    container = app["container"]
    assert container["type"] == "DOCKER"
    assert container["volumes"] == []
    assert container["docker"]["parameters"] == []
    for key, value in docker_defaults.items():
        assert container["docker"][key] == value, key


def test_the_app_list_example_is_reproduced_from_its_non_default_fields(
    marathon_reference: Path,
) -> None:
    [reference] = json.loads((marathon_reference / "examples/app_list.json").read_text())["apps"]
    request = {k: reference[k] for k in ("id", "cmd", "env", "instances", "cpus", "mem", "disk",
                                         "constraints", "uris", "ports")}
    filled = fill_all(request)
    skip = defaults.RUNTIME_FIELDS | DEPRECATED | VERSION_DIFFERENCES
    compared = [k for k in reference if k not in skip]
    assert len(compared) >= 20
    assert {k: filled[k] for k in compared} == {k: reference[k] for k in compared}
    assert [d["port"] for d in filled["portDefinitions"]] == reference["ports"]
    assert [f["uri"] for f in filled["fetch"]] == reference["uris"]
    assert filled["networks"] == [{"mode": "host"}]


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _same_shape(reference: Any, actual: Any, path: str, skip: set[str]) -> list[str]:
    """Paths where ``actual`` lacks a key of ``reference`` or holds another JSON type."""
    if path in skip:
        return []
    if _type_of(reference) != _type_of(actual):
        return [f"{path}: {_type_of(reference)} != {_type_of(actual)}"]
    problems: list[str] = []
    if isinstance(reference, dict):
        for key, value in reference.items():
            if key not in actual:
                if f"{path}/{key}" not in skip:
                    problems.append(f"{path}/{key}: missing")
                continue
            problems += _same_shape(value, actual[key], f"{path}/{key}", skip)
    elif isinstance(reference, list) and reference and actual:
        problems += _same_shape(reference[0], actual[0], f"{path}/0", skip)
    return problems


def test_every_field_of_the_app_example_exists_with_the_same_type(
    marathon_reference: Path,
) -> None:
    reference = json.loads((marathon_reference / "examples/app.json").read_text())
    filled = fill_all(reference)
    skip = {"/ipAddress", "/container/docker/network", "/container/docker/portMappings",
            # Marathon writes no portDefinitions for a bridge app (AppConversion.appWriter).
            "/portDefinitions"}
    assert _same_shape(reference, filled, "", skip) == []
    # Legacy docker port mappings move to the container, with their service port kept.
    assert filled["container"]["portMappings"] == [
        {**reference["container"]["docker"]["portMappings"][0]}
    ]
    assert filled["networks"] == [{"mode": "container/bridge"}]
    assert "portDefinitions" not in filled


def test_fill_defaults_never_mutates_its_arguments(marathon_reference: Path) -> None:
    reference = json.loads((marathon_reference / "examples/app.json").read_text())
    previous = fill_all(reference)
    before = copy.deepcopy((reference, previous))
    filled = defaults.fill_defaults(reference, allocator=serviceports.ServicePortAllocator(),
                                   previous=previous)
    assert (reference, previous) == before
    filled["labels"]["owner"] = "hera"
    filled["container"]["docker"]["parameters"].append({"key": "x", "value": "y"})
    assert (reference, previous) == before


def test_ids_and_dependencies_become_absolute() -> None:
    app = fill_all({"id": "dirac/services/../rms/executor", "cmd": "run",
                    "dependencies": ["../configuration/server", "/dirac/db", "fts"]})
    assert app["id"] == "/dirac/rms/executor"
    assert app["dependencies"] == ["/dirac/configuration/server", "/dirac/db", "/dirac/rms/fts"]


def test_host_app_without_ports_gets_one_default_port() -> None:
    app = fill_all(minimal())
    assert app["portDefinitions"] == [
        {"port": 10000, "protocol": "tcp", "name": "default", "labels": {}}
    ]
    assert fill_all(minimal(portDefinitions=[]))["portDefinitions"] == []


def test_container_network_without_mappings_gets_one_default_mapping() -> None:
    app = fill_all({"id": "/web", "networks": [{"name": "dcos"}],
                    "container": {"docker": {"image": "lhcbdirac:v8r2p44"}}})
    assert app["networks"] == [{"mode": "container", "name": "dcos"}]
    assert app["container"]["portMappings"] == [
        {"containerPort": 0, "protocol": "tcp", "servicePort": 10000, "name": "default",
         "labels": {}}
    ]
    assert "portDefinitions" not in app


def test_legacy_host_docker_network_keeps_port_definitions() -> None:
    app = fill_all({"id": "/a", "ports": [1980], "container": {
        "type": "DOCKER", "docker": {"image": "oauth:1", "network": "HOST"}}})
    assert app["networks"] == [{"mode": "host"}]
    assert app["portDefinitions"] == [{"port": 1980, "protocol": "tcp", "labels": {}}]
    assert "network" not in app["container"]["docker"]
    assert "portMappings" not in app["container"]


# -- service ports --------------------------------------------------------------------------


def test_service_ports_are_unique_across_apps() -> None:
    allocator = serviceports.ServicePortAllocator()
    ports = []
    for i in range(5):
        app = defaults.fill_defaults(minimal(id=f"/app-{i}", portDefinitions=[{}, {}]),
                                    allocator=allocator)
        ports += serviceports.service_ports(app)
    assert len(ports) == len(set(ports)) == 10
    assert all(10000 <= p <= 20000 for p in ports)


def test_service_ports_stay_with_the_app_across_updates() -> None:
    allocator = serviceports.ServicePortAllocator()
    first = defaults.fill_defaults(minimal(portDefinitions=[{"name": "http"}, {"name": "dips"}]),
                                  allocator=allocator)
    defaults.fill_defaults(minimal(id="/other"), allocator=allocator)
    changed = changes.apply_partial_update(first, {"cmd": "sleep 200"})
    changed["portDefinitions"] = [{"port": 0, "name": "http"}, {"port": 0, "name": "dips"}]
    second = defaults.fill_defaults(changed, allocator=allocator, previous=first)
    assert serviceports.service_ports(second) == serviceports.service_ports(first)


def test_declared_service_ports_are_kept_and_never_handed_out() -> None:
    allocator = serviceports.ServicePortAllocator(port_min=10000, port_max=10002)
    fixed = defaults.fill_defaults(minimal(portDefinitions=[{"port": 10001}]), allocator=allocator)
    assert serviceports.service_ports(fixed) == [10001]
    other = defaults.fill_defaults(minimal(id="/b", portDefinitions=[{}, {}]), allocator=allocator)
    assert serviceports.service_ports(other) == [10000, 10002]
    with pytest.raises(RuntimeError, match="exhausted"):
        defaults.fill_defaults(minimal(id="/c"), allocator=allocator)


def test_ports_an_app_drops_or_a_deleted_app_held_are_given_back() -> None:
    allocator = serviceports.ServicePortAllocator(port_min=10000, port_max=10001)
    two = defaults.fill_defaults(minimal(portDefinitions=[{}, {}]), allocator=allocator)
    one = defaults.fill_defaults(minimal(portDefinitions=[{}]), allocator=allocator, previous=two)
    assert serviceports.service_ports(one) == [10000]
    other = defaults.fill_defaults(minimal(id="/b"), allocator=allocator)
    assert serviceports.service_ports(other) == [10001]
    allocator.release(serviceports.service_ports(one))
    third = defaults.fill_defaults(minimal(id="/c"), allocator=allocator)
    assert serviceports.service_ports(third) == [10000]


def test_reserved_ports_survive_a_reload() -> None:
    allocator = serviceports.ServicePortAllocator()
    allocator.reserve([10000, 10001])
    app = defaults.fill_defaults(minimal(), allocator=allocator)
    assert serviceports.service_ports(app) == [10002]


def test_port_names_follow_mappings_or_definitions(marathon_reference: Path) -> None:
    reference = json.loads((marathon_reference / "examples/app.json").read_text())
    assert serviceports.port_names(fill_all(reference)) == ["http"]
    assert serviceports.port_names(fill_all(minimal())) == ["default"]


# -- validation -----------------------------------------------------------------------------

SHAPE_CASES = [
    ({"cmd": "x"}, "/id", "error.path.missing"),
    # The generated RAML reader checks strings.PathId's pattern before any rule
    # (docs/.../types/stringTypes.raml): a bad id never reaches PathId's validator.
    ({"id": "/DIRAC/Portal", "cmd": "x y"}, "/id", "error.pattern"),
    ({"id": "/dirac_web", "cmd": "x y"}, "/id", "error.pattern"),
    ({"id": "/-web", "cmd": "x y"}, "/id", "error.pattern"),
    (minimal(cpus=0), "/cpus", "error.min"),
    (minimal(cpus="1"), "/cpus", "error.expected.jsnumber"),
    (minimal(mem=-1), "/mem", "error.min"),
    (minimal(disk=-0.5), "/disk", "error.min"),
    (minimal(instances=-1), "/instances", "error.min"),
    (minimal(instances=1.5), "/instances", "error.expected.int"),
    (minimal(backoffFactor=0.5), "/backoffFactor", "error.min"),
    (minimal(requirePorts="yes"), "/requirePorts", "error.expected.jsboolean"),
    (minimal(env=[]), "/env", "error.expected.jsobject"),
    (minimal(labels={"tier": 1}), "/labels/tier", "error.expected.jsstring"),
    (minimal(killSelection="RANDOM"), "/killSelection", "error.unknown.enum.literal"),
    (minimal(upgradeStrategy={"minimumHealthCapacity": 1.5}),
     "/upgradeStrategy/minimumHealthCapacity", "error.max"),
    (minimal(upgradeStrategy={"maximumOverCapacity": -0.1}),
     "/upgradeStrategy/maximumOverCapacity", "error.min"),
    (minimal(healthChecks=[{"protocol": "GOPHER"}]), "/healthChecks(0)/protocol",
     "error.unknown.enum.literal"),
    (minimal(networks=[{"mode": "overlay"}]), "/networks(0)/mode", "error.unknown.enum.literal"),
    ({"id": "/a", "container": {"docker": {}}}, "/container/docker/image", "error.path.missing"),
    (minimal(cmd=""), "/cmd", "error.minLength"),
]


@pytest.mark.parametrize(("definition", "path", "message"), SHAPE_CASES)
def test_unreadable_bodies_are_invalid_json(definition: JSON, path: str, message: str) -> None:
    body = validation.rejection(definition)
    assert body is not None
    assert body["message"] == validation.INVALID_JSON == "Invalid JSON"
    assert message in errors_at(body["details"], path), body


CMD_OR_CONTAINER = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
PORT_INDEX = ("Health check port indices must address an element of the ports array or container "
              "port mappings.")
BRIDGE: JSON = {"container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"},
                        "portMappings": [{"containerPort": 8080, "name": "https"}]},
          "networks": [{"mode": "container/bridge"}]}
RULE_CASES = [
    # state/PathId.scala reservedKeywords (1.11: restart, tasks, versions, ., ..).
    ({"id": "/dirac/tasks", "cmd": "x y"}, "/id",
     "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."),
    ({"id": "/dirac/..", "cmd": "x y"}, "/id",
     "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."),
    ({"id": "/", "cmd": "x y"}, "/id", "Path must contain at least one path element"),
    ({"id": "/a"}, "/", CMD_OR_CONTAINER),
    ({"id": "/a", "cmd": "x y", "args": ["x"]}, "/", CMD_OR_CONTAINER),
    ({"id": "/a", "cmd": "x"}, "/", "must not be an empty string"),
    ({"id": "/a", "container": {"docker": {"image": ""}}}, "/container/docker/image",
     "must not be empty"),
    (minimal(portDefinitions=[{"name": "http"}, {"name": "http"}]), "/portDefinitions",
     "Port names must be unique."),
    (minimal(portDefinitions=[{"port": 8080}, {"port": 8080}]), "/portDefinitions",
     "Ports must be unique."),
    ({**minimal(), **BRIDGE, "container": {**BRIDGE["container"], "portMappings": [
        {"containerPort": 1, "name": "a"}, {"containerPort": 2, "name": "a"}]}},
     "/container/portMappings", "Port names must be unique."),
    (minimal(container=BRIDGE["container"]), "/",
     "portMappings are not allowed with host-networking"),
    ({**minimal(), **BRIDGE, "portDefinitions": [{"port": 0}]}, "/",
     "portDefinitions are only allowed with host-networking"),
    (minimal(healthChecks=[{"protocol": "HTTP", "portIndex": 1}]), "/healthChecks(0)", PORT_INDEX),
    (minimal(portDefinitions=[], healthChecks=[{"protocol": "TCP"}]), "/healthChecks(0)",
     PORT_INDEX),
    (minimal(portDefinitions=[{}, {}], healthChecks=[{"protocol": "HTTP"}]), "/healthChecks(0)",
     PORT_INDEX),
    (minimal(healthChecks=[{"protocol": "HTTP", "ipProtocol": "IPv6"}]), "/healthChecks(0)",
     "IPv6 can only be used for container type DOCKER and Mesos http/https/tcp health checks"),
    (minimal(healthChecks=[{"protocol": "MESOS_TCP"}, {"protocol": "MESOS_HTTP"}]), "/",
     "AppDefinition can contain at most one Mesos health check"),
    (minimal(readinessChecks=[{"portName": "http"}]), "/readinessChecks(0)/portName",
     "No port definition reference for portName http"),
    (minimal(readinessChecks=[{"portName": "default", "timeoutSeconds": 30}]),
     "/readinessChecks(0)/timeoutSeconds", "got 30, expected less than 30"),
    (minimal(constraints=[["hostname"]]), "/constraints(0)",
     "Each constraint must have either 2 or 3 fields"),
    (minimal(constraints=[["hostname", "NEAR", "x"]]), "/constraints(0)",
     "Constraint operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER "
     "or UNLIKE"),
    (minimal(constraints=[["hostname", "UNIQUE", "x"]]), "/constraints(0)",
     "Value specified but not used"),
    (minimal(constraints=[["rack", "CLUSTER"]]), "/constraints(0)", "Missing value"),
    (minimal(constraints=[["rack", "GROUP_BY", "two"]]), "/constraints(0)",
     "Value was specified but is not a number"),
    (minimal(constraints=[["rack", "MAX_PER", "x"]]), "/constraints(0)",
     "Value was not specified or is not a number"),
    (minimal(constraints=[["hostname", "LIKE", "srv[2"]]), "/constraints(0)",
     "'srv[2' is not a valid regular expression"),
    (minimal(constraints=[["hostname", "LIKE"]]), "/constraints(0)",
     "A regular expression value must be provided"),
    (minimal(dependencies=["/dirac/Config"]), "/dependencies(0)", ids.ID_SEGMENT_MESSAGE),
    (minimal(env={"DB_PASSWORD": {"secret": "db"}}), "/env/DB_PASSWORD/secret",
     "references an undefined secret"),
    (minimal(acceptedResourceRoles=[]), "/acceptedResourceRoles", "must not be empty"),
    (minimal(labels={"MARATHON_SINGLE_INSTANCE_APP": "true"}, instances=2), "/",
     "Single instance app may only have one instance"),
    (minimal(ports=[0], portDefinitions=[{"port": 1}]), "/",
     "cannot specify both ports and port definitions"),
    (minimal(ports=[8080, 8080]), "/", "ports must be unique"),
    ({**minimal(), "networks": [{"mode": "host"}],
      "container": {"docker": {"image": "x:1", "network": "HOST"}}}, "/",
     "must not specify both container.docker.network and networks"),
    (minimal(uris=["https://a/b"], fetch=[{"uri": "https://a/c"}]), "/uris",
     "may not be set in conjunction with fetch"),
]


@pytest.mark.parametrize(("definition", "path", "message"), RULE_CASES)
def test_rule_violations_carry_marathons_path_and_message(
    definition: JSON, path: str, message: str
) -> None:
    body = validation.rejection(definition)
    assert body is not None
    assert body["message"] == validation.INVALID_OBJECT == "Object is not valid"
    assert message in errors_at(body["details"], path), body
    assert validation.validate_app(definition) == body["details"]


def test_id_message_quotes_marathons_own_pattern() -> None:
    assert ids.ID_SEGMENT_MESSAGE == (
        "must fully match regular expression "
        "'^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])"
        "|(\\.|\\.\\.)$'"
    )


@pytest.mark.parametrize("definition", [
    minimal(),
    {"id": "relative/id.with.dots", "args": ["run"]},
    {"id": "/web", "container": {"docker": {"image": "lhcbdirac:v8r2p44"}}},
    {"id": "/web", **BRIDGE, "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0}],
     "readinessChecks": [{"portName": "https"}]},
    minimal(healthChecks=[{"protocol": "COMMAND", "command": {"value": "true"}},
                          {"protocol": "HTTP"}, {"protocol": "TCP", "port": 8080}]),
    minimal(constraints=[["hostname", "UNIQUE"], ["rack", "GROUP_BY", "3"],
                         ["hostname", "LIKE", "srv2.*"], ["rack", "MAX_PER", "2"]]),
    minimal(env={"DB_PASSWORD": {"secret": "db"}}, secrets={"db": {"source": "/db/pw"}}),
    minimal(unreachableStrategy="disabled"),
    minimal(ports=[0, 0], uris=["https://example.org/a.tgz"]),
])
def test_valid_definitions_have_no_problems(definition: JSON) -> None:
    assert validation.validate_app(definition) == []
    assert validation.rejection(definition) is None


def test_shape_errors_come_before_rule_errors() -> None:
    details = validation.validate_app({"id": "/BAD", "cpus": "lots"})
    assert details == [{"path": "/id", "errors": ["error.pattern"]},
                       {"path": "/cpus", "errors": ["error.expected.jsnumber"]}]


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert validation.rejection([1]) == {  # type: ignore[arg-type]
        "message": "Invalid JSON", "details": [{"path": "/", "errors": ["error.expected.jsobject"]}]
    }


# -- partial updates and change kinds -------------------------------------------------------


def stored_app() -> JSON:
    app: JSON = fill_all(minimal(env={"DIRAC_SETUP": "LHCb-Certification"},
                                 labels={"tier": "fts"}, instances=2))
    return app


def test_partial_update_replaces_present_fields_and_keeps_absent_ones() -> None:
    stored = stored_app()
    merged = changes.apply_partial_update(stored, {"instances": 4, "env": {"X": "1"}})
    assert merged["instances"] == 4
    assert merged["env"] == {"X": "1"}  # replaced whole, not merged key by key
    assert merged["labels"] == {"tier": "fts"}
    assert merged["cmd"] == stored["cmd"]


def test_partial_update_ignores_nulls_runtime_fields_and_the_id() -> None:
    stored = {**stored_app(), "version": "2024-01-01T00:00:00.000Z", "tasksRunning": 2}
    merged = changes.apply_partial_update(
        stored, {"cmd": None, "id": "/elsewhere", "tasksRunning": 7, "version": "x"})
    assert merged["cmd"] == "sleep 100"
    assert merged["id"] == stored["id"]
    assert not defaults.RUNTIME_FIELDS & merged.keys()


def test_partial_update_never_mutates_its_arguments() -> None:
    stored, update = stored_app(), {"labels": {"tier": "web"}}
    before = copy.deepcopy((stored, update))
    merged = changes.apply_partial_update(stored, update)
    merged["labels"]["tier"] = "db"
    merged["env"]["Y"] = "2"
    assert (stored, update) == before


def test_partial_update_migrates_deprecated_fields() -> None:
    stored = stored_app()
    merged = changes.apply_partial_update(stored, {"ports": [0, 0], "uris": ["https://a/b.tgz"]})
    assert merged["portDefinitions"] == [{"port": 0}, {"port": 0}]
    assert merged["fetch"] == [{"uri": "https://a/b.tgz"}]
    assert validation.validate_app(merged) == []


def test_partial_update_to_a_bridge_container_drops_the_host_port_definitions() -> None:
    stored = stored_app()
    merged = changes.apply_partial_update(stored, {"cmd": "run", "container": {
        "type": "DOCKER",
        "docker": {"image": "lhcbdirac:v8r2p44", "network": "BRIDGE",
                   "portMappings": [{"containerPort": 8080}]}}})
    assert merged["networks"] == [{"mode": "container/bridge"}]
    assert "portDefinitions" not in merged
    assert validation.validate_app(merged) == []
    filled = defaults.fill_defaults(merged, allocator=serviceports.ServicePortAllocator())
    assert filled["container"]["portMappings"][0]["hostPort"] == 0


def test_change_kinds() -> None:
    allocator = serviceports.ServicePortAllocator()
    old = defaults.fill_defaults(minimal(instances=2), allocator=allocator)

    def updated(**fields: Any) -> JSON:
        merged = changes.apply_partial_update(old, fields)
        return defaults.fill_defaults(merged, allocator=allocator, previous=old)

    assert changes.change_kind(old, updated()) == "none"
    assert changes.change_kind(old, updated(instances=2)) == "none"
    assert changes.change_kind(old, updated(instances=5)) == "scale"
    assert changes.change_kind(old, updated(instances=0)) == "scale"
    assert changes.change_kind(old, updated(cmd="sleep 200")) == "config"
    assert changes.change_kind(old, updated(instances=5, mem=256)) == "config"
    assert changes.change_kind(old, updated(labels={"tier": "x"})) == "config"
    runtime = {**old, "version": "2024-01-01T00:00:00.000Z", "tasksRunning": 2,
               "versionInfo": {"lastScalingAt": "x", "lastConfigChangeAt": "x"}}
    assert changes.change_kind(runtime, old) == "none"


def test_sending_back_the_stored_app_is_no_change() -> None:
    allocator = serviceports.ServicePortAllocator()
    stored = defaults.fill_defaults(
        {"id": "/web", **BRIDGE, "healthChecks": [{"protocol": "HTTP"}]}, allocator=allocator)
    again = defaults.fill_defaults(changes.apply_partial_update(stored, stored),
                                  allocator=allocator, previous=stored)
    assert changes.change_kind(stored, again) == "none"


# -- groups ---------------------------------------------------------------------------------

DIRAC_GROUP = {
    "apps": [{"id": "configuration", "cmd": "run cs"}],
    "groups": [
        {"id": "fts", "apps": [{"id": "manager", "cmd": "run fts",
                                "dependencies": ["../configuration"]}]},
        {"id": "/dirac/web", "apps": [{"id": "/dirac/web/portal", "cmd": "run portal"}],
         "groups": [{"id": "static", "apps": [{"id": "files", "cmd": "run files"}]}]},
    ],
}


def test_flatten_group_resolves_every_id_against_its_group() -> None:
    apps = groups.flatten_group(DIRAC_GROUP, base="/dirac")
    assert [a["id"] for a in apps] == [
        "/dirac/configuration", "/dirac/fts/manager", "/dirac/web/portal",
        "/dirac/web/static/files",
    ]
    assert apps[1]["dependencies"] == ["../configuration"]  # resolved later, by fill_defaults
    filled = fill_all(apps[1])
    assert filled["dependencies"] == ["/dirac/configuration"]
    assert groups.group_ids(DIRAC_GROUP, base="/dirac") == [
        "/dirac", "/dirac/fts", "/dirac/web", "/dirac/web/static"]


def test_flatten_group_with_its_own_id() -> None:
    apps = groups.flatten_group({"id": "/prod", "apps": [{"id": "a", "cmd": "x y"}]}, base="/")
    assert [a["id"] for a in apps] == ["/prod/a"]


def test_valid_group_has_no_problems() -> None:
    assert groups.validate_group({**DIRAC_GROUP, "id": "/dirac"}) == []


def test_group_problems_are_reported_under_the_app_path() -> None:
    group = {"id": "/dirac", "apps": [{"id": "ok", "cmd": "x y"}, {"id": "bad", "cpus": 0}],
             "groups": [{"id": "fts", "apps": [{"id": "/elsewhere/manager", "cmd": "x y"}]},
                        {"apps": []}]}
    details = groups.validate_group(group)
    assert errors_at(details, "/apps(1)/cpus") == ["error.min"]
    # PathId.childOf (state/PathId.scala), through AppValidation.validNestedApp.
    assert errors_at(details, "/groups(0)/apps(0)/id") == [
        "Identifier is not child of '/dirac/fts'"]
    assert errors_at(details, "/groups(1)/id") == ["error.path.missing"]
    assert not errors_at(details, "/apps(0)")


def test_group_rule_errors_sit_at_the_app_itself() -> None:
    details = groups.validate_group({"id": "/g", "apps": [{"id": "a"}]})
    assert errors_at(details, "/apps(0)") == [CMD_OR_CONTAINER]
