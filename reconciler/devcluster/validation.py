"""Marathon's validation of an app definition as submitted: the 422 ``details`` it answers.

Validation follows ``AppValidation.scala``, ``SchedulingValidation.scala`` and ``PathId.scala``:
shape errors (wrong JSON type, out-of-range number, :mod:`shapes`) come first with Marathon's
``Invalid JSON`` message and Play's error keys; rule errors come with ``Object is not valid``.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.devcluster import defaults, ids, plain, serviceports, shapes

JSON = dict[str, Any]

INVALID_JSON = "Invalid JSON"
"""Marathon's top-level message when the body does not read as an app (types, ranges)."""
INVALID_OBJECT = "Object is not valid"
"""Marathon's top-level message when the app reads but breaks a rule (``Validation.scala``)."""


_MARATHON_PROBES = frozenset({"HTTP", "HTTPS", "TCP"})
"""Checks Marathon itself runs: the only ones whose ``portIndex`` it validates."""
_MESOS_PROBES = frozenset({"COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"})


_CONSTRAINT_OPERATORS = frozenset(
    {"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}
)
_ILLEGAL_OPERATOR = (
    "Constraint operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER "
    "or UNLIKE"
)
_SINGLE_INSTANCE_LABEL = "MARATHON_SINGLE_INSTANCE_APP"


def _check_rules(raw: JSON, app: JSON, problems: shapes.Problems) -> None:
    """The ``Object is not valid`` phase on the canonical app (``validateCanonicalAppAPI``)."""
    raw_id = raw["id"]
    for message in ids.id_problems(raw_id):
        problems.add("/id", message)
    if app["id"] == "/":
        problems.add("/id", "Path must contain at least one path element")
        problems.add("/", "must not be root")
    _check_deprecated(raw, problems)
    cmd, args, container = app.get("cmd"), app.get("args"), app.get("container")
    has_cmd, has_args = cmd is not None, bool(args)
    has_image = defaults.has_image(container)
    if not ((has_cmd != has_args) or (not (has_cmd and has_args) and has_image)):
        problems.add("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a "
                          "'container'.")
    if isinstance(cmd, str) and len(cmd) <= 1:
        # Marathon's own check is ``length > 1``: a one-letter command is refused too.
        problems.add("/", "must not be an empty string")
    networks = app["networks"]
    modes = [n.get("mode") for n in networks]
    mappings = plain.as_dict(container).get("portMappings") or []
    if "host" in modes and mappings:
        problems.add("/", "portMappings are not allowed with host-networking")
    if any(m != "host" for m in modes) and raw.get("portDefinitions"):
        problems.add("/", "portDefinitions are only allowed with host-networking")
    if "host" in modes and len(modes) > 1:
        problems.add("/networks", "host networking may not be combined with other networks")
    if (
        plain.as_dict(container).get("type", "DOCKER") == "DOCKER"
        and container is not None
        and modes.count("container") > 1
    ):
        problems.add("/", "may only specify a single container network when using the Docker "
                          "container engine")
    if container is not None and plain.as_dict(container.get("docker")).get("image") == "":
        problems.add("/container/docker/image", "must not be empty")
    _check_ports(app, problems)
    _check_health_checks(app, plain.as_list(raw.get("healthChecks")), problems)
    _check_readiness_checks(app, problems)
    for i, constraint in enumerate(app["constraints"]):
        problem = _constraint_problem(constraint)
        if problem:
            problems.add(f"/constraints({i})", problem)
    for i, dep in enumerate(raw.get("dependencies") or []):
        for message in ids.id_problems(dep):
            problems.add(f"/dependencies({i})", message)
    secrets = app["secrets"]
    for name, value in app["env"].items():
        if isinstance(value, dict):
            secret = value.get("secret")
            if not isinstance(secret, str):
                problems.add(f"/env/{name}", "error.expected.jsstring")
            elif secret not in secrets:
                problems.add(f"/env/{name}/secret", "references an undefined secret")
    roles = app.get("acceptedResourceRoles")
    if roles is not None and not roles:
        problems.add("/acceptedResourceRoles", "must not be empty")
    if app["gpus"] > 0 and plain.as_dict(container).get("type", "DOCKER") == "DOCKER" and container:
        problems.add("/", "GPU resources only work with the Mesos containerizer")
    if app["labels"].get(_SINGLE_INSTANCE_LABEL) == "true":
        if app["instances"] > 1:
            problems.add("/", "Single instance app may only have one instance")
        strategy = raw.get("upgradeStrategy") or {}
        for field in ("minimumHealthCapacity", "maximumOverCapacity"):
            if field in strategy and strategy[field] != 0:
                problems.add(f"/upgradeStrategy/{field}",
                             f"got {strategy[field]}, expected 0.0")


def _check_deprecated(raw: JSON, problems: shapes.Problems) -> None:
    """``validateOldAppAPI``: the deprecated fields may not contradict the canonical ones."""
    container = plain.as_dict(raw.get("container"))
    docker = plain.as_dict(container.get("docker"))
    if docker.get("network") is not None and raw.get("networks"):
        problems.add("/", "must not specify both container.docker.network and networks")
    if raw.get("ipAddress") is not None and raw.get("networks"):
        problems.add("/", "must not specify both networks and ipAddress")
    ports = raw.get("ports")
    if ports is not None:
        chosen = [p for p in ports if p]
        if len(chosen) != len(set(chosen)):
            problems.add("/", "ports must be unique")
        definitions = raw.get("portDefinitions")
        if definitions is not None and [d.get("port", 0) for d in definitions] != list(ports):
            problems.add("/", "cannot specify both ports and port definitions")
    if raw.get("ipAddress") is not None and (raw.get("ports") or raw.get("portDefinitions")):
        problems.add("/", "cannot specify both an IP address and port")
    if raw.get("uris") and raw.get("fetch"):
        problems.add("/uris", "may not be set in conjunction with fetch")
    if docker.get("portMappings") and container.get("portMappings"):
        problems.add("/container", "must not specify both container.portMappings and "
                                   "container.docker.portMappings")


def _check_ports(app: JSON, problems: shapes.Problems) -> None:
    definitions = app.get("portDefinitions") or []
    names = [d["name"] for d in definitions if d.get("name") is not None]
    if len(names) != len(set(names)):
        problems.add("/portDefinitions", "Port names must be unique.")
    chosen = [d.get("port", 0) for d in definitions if d.get("port", 0)]
    if len(chosen) != len(set(chosen)):
        problems.add("/portDefinitions", "Ports must be unique.")
    mappings = plain.as_dict(app.get("container")).get("portMappings") or []
    names = [m["name"] for m in mappings if m.get("name") is not None]
    if len(names) != len(set(names)):
        problems.add("/container/portMappings", "Port names must be unique.")
    network_names = {n["name"] for n in app["networks"] if n.get("name")}
    container_networks = sum(1 for n in app["networks"] if n.get("mode") == "container")
    for i, mapping in enumerate(mappings):
        for name in mapping.get("networkNames") or []:
            if name not in network_names:
                problems.add(f"/container/portMappings({i})/networkNames",
                             f"is not one of ({','.join(sorted(network_names))})")
        if (
            container_networks > 1
            and mapping.get("hostPort") is not None
            and len(mapping.get("networkNames") or []) != 1
        ):
            problems.add(f"/container/portMappings({i})",
                         "networkNames must be a single item list when hostPort is specified "
                         "and more than 1 container network is defined")


def _check_health_checks(app: JSON, submitted: list[JSON], problems: shapes.Problems) -> None:
    """Rules on health checks; ``portIndex`` is judged as submitted, before it defaults to 0."""
    port_count = len(serviceports.port_items(app))
    docker = plain.as_dict(app.get("container")).get("type", "DOCKER") == "DOCKER" and bool(
        app.get("container")
    )
    mesos_checks = 0
    for i, check in enumerate(app["healthChecks"]):
        protocol = check.get("protocol") or "HTTP"
        base = f"/healthChecks({i})"
        if protocol == "COMMAND" and check.get("command") is None:
            problems.add(f"{base}/command", "error.path.missing")
        if check.get("command") is None and protocol in _MARATHON_PROBES:
            index = submitted[i].get("portIndex")
            if index is not None:
                valid = 0 <= index < port_count
            else:
                valid = check.get("port") is not None or port_count == 1
            if not valid:
                problems.add(base, "Health check port indices must address an element of the "
                                   "ports array or container port mappings.")
        mesos_probe = protocol in ("MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
        if check.get("ipProtocol", "IPv4") != "IPv4" and not (mesos_probe and docker):
            problems.add(base, "IPv6 can only be used for container type DOCKER and Mesos "
                               "http/https/tcp health checks")
        if check.get("command") is None and protocol in _MESOS_PROBES:
            mesos_checks += 1
    if mesos_checks > 1:
        problems.add("/", "AppDefinition can contain at most one Mesos health check")


def _check_readiness_checks(app: JSON, problems: shapes.Problems) -> None:
    checks = app["readinessChecks"]
    if len(checks) > 1:
        problems.add("/readinessChecks", f"got {len(checks)}, expected 1 or less")
    names = {item.get("name") for item in serviceports.port_items(app) if item.get("name")}
    for i, check in enumerate(checks):
        if check["portName"] not in names:
            problems.add(f"/readinessChecks({i})/portName",
                         f"No port definition reference for portName {check['portName']}")
        if check["timeoutSeconds"] >= check["intervalSeconds"]:
            problems.add(f"/readinessChecks({i})/timeoutSeconds",
                         f"got {check['timeoutSeconds']}, expected less than "
                         f"{check['intervalSeconds']}")


def _constraint_problem(constraint: list[str]) -> str | None:
    """``SchedulingValidation.complyWithAppConstraintRules`` for one constraint."""
    if len(constraint) < 2 or len(constraint) > 3:
        return "Each constraint must have either 2 or 3 fields"
    operator = constraint[1]
    value = constraint[2] if len(constraint) == 3 else None
    if operator not in _CONSTRAINT_OPERATORS:
        return _ILLEGAL_OPERATOR
    if operator == "UNIQUE":
        return "Value specified but not used" if value is not None else None
    if operator == "CLUSTER":
        return "Missing value" if value is None else None
    if operator in ("GROUP_BY", "MAX_PER") and value is not None and not _is_int_text(value):
        if operator == "GROUP_BY":
            return "Value was specified but is not a number"
        return "Value was not specified or is not a number"
    if operator in ("LIKE", "UNLIKE"):
        if value is None:
            return "A regular expression value must be provided"
        try:
            re.compile(value)
        except re.error:
            return f"'{value}' is not a valid regular expression"
    if operator == "IS" and value is None:
        return "Missing value"
    return None


def _is_int_text(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def validate_app(definition: JSON) -> list[JSON]:
    """Marathon's validation of an app definition as submitted.

    Returns Marathon's 422 ``details``: ``[{"path": "/cpus", "errors": ["..."]}]``;
    empty when valid.
    """
    return _validate(definition)[1]


def rejection(definition: JSON) -> JSON | None:
    """The whole 422 body Marathon answers for ``definition`` (``message`` and ``details``).

    None when the definition is valid.
    """
    message, details = _validate(definition)
    return {"message": message, "details": details} if details else None


def rule_rejection(definition: JSON) -> JSON | None:
    """Like :func:`rejection` for a definition whose shapes were already checked."""
    problems = shapes.Problems()
    _check_rules(definition, defaults.canonical(definition), problems)
    details = problems.details()
    return {"message": INVALID_OBJECT, "details": details} if details else None


def _validate(definition: JSON) -> tuple[str, list[JSON]]:
    problems = shapes.Problems()
    if not isinstance(definition, dict):
        problems.add("/", "error.expected.jsobject")
        return INVALID_JSON, problems.details()
    shapes.check_shapes(definition, problems)
    if problems.by_path:
        return INVALID_JSON, problems.details()
    _check_rules(definition, defaults.canonical(definition), problems)
    return INVALID_OBJECT, problems.details()
