"""Marathon's app rules for the dev cluster: defaults, validation, service ports, change kinds.

Pure functions over plain JSON dicts, no I/O. The server validates a submitted definition
(:func:`validate_app`, or :func:`rejection` for the whole 422 body), merges partial updates
(:func:`apply_partial_update`), turns the result into the app as Marathon stores and returns it
(:func:`fill_defaults`) and asks what kind of change it was (:func:`change_kind`).

The defaults follow Marathon's RAML types (``app.raml``, ``healthCheck.raml``,
``appContainer.raml``, ``network.raml``, ``readinessCheck.raml``, ``unreachableStrategy.raml``)
in the canonical form Marathon 1.5+ answers with: the deprecated ``ports``, ``uris``,
``ipAddress``, ``container.docker.network`` and ``container.docker.portMappings`` are migrated to
``portDefinitions``, ``fetch``, ``networks`` and ``container.portMappings`` and never written back.
Validation follows ``AppValidation.scala``, ``SchedulingValidation.scala`` and ``PathId.scala``:
shape errors (wrong JSON type, out-of-range number) come first with Marathon's ``Invalid JSON``
message and Play's error keys; rule errors come with ``Object is not valid``.

This module shares no code with the controller on purpose: the dev cluster must never hide a
controller bug by agreeing with it.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

JSON = dict[str, Any]
ChangeKind = Literal["none", "scale", "config"]

INVALID_JSON = "Invalid JSON"
"""Marathon's top-level message when the body does not read as an app (types, ranges)."""
INVALID_OBJECT = "Object is not valid"
"""Marathon's top-level message when the app reads but breaks a rule (``Validation.scala``)."""

ID_SEGMENT_PATTERN = (
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$"
)
"""``PathId.ID_PATH_SEGMENT_PATTERN``; Java's ``matches()`` needs the whole segment to match."""
ID_SEGMENT = re.compile(ID_SEGMENT_PATTERN)
ID_SEGMENT_MESSAGE = f"must fully match regular expression '{ID_SEGMENT_PATTERN}'"
RESERVED_ID_KEYWORDS = ("restart", "tasks", "versions")

SERVICE_PORT_MIN = 10000
SERVICE_PORT_MAX = 20000
"""Marathon's ``--local_port_min`` / ``--local_port_max`` defaults."""

RUNTIME_FIELDS = frozenset(
    {
        "version", "versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy",
        "tasksUnhealthy", "deployments", "tasks", "lastTaskFailure", "readinessCheckResults",
        "tasksStats", "taskStats", "counts",
    }
)
"""``AppInfo`` fields only Marathon writes; never part of a definition or of a change."""

_DEPRECATED_FIELDS = ("ports", "uris", "ipAddress")

_APP_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("cmd", None),
    ("args", None),
    ("user", None),
    ("env", {}),
    ("instances", 1),
    ("cpus", 1),
    ("mem", 128),
    ("disk", 0),
    ("gpus", 0),
    ("executor", ""),
    ("constraints", []),
    ("fetch", []),
    ("storeUrls", []),
    ("backoffSeconds", 1),
    ("backoffFactor", 1.15),
    ("maxLaunchDelaySeconds", 300),
    ("container", None),
    ("requirePorts", False),
    ("healthChecks", []),
    ("readinessChecks", []),
    ("dependencies", []),
    ("labels", {}),
    ("acceptedResourceRoles", None),
    ("secrets", {}),
    ("killSelection", "YOUNGEST_FIRST"),
    ("role", "*"),
)
"""Top-level defaults (app.raml), in the order Marathon's examples list the fields.

``maxLaunchDelaySeconds`` is 300 as in the RAML of the last Marathon; 1.x before 1.8 said 3600.
"""
_UPGRADE_DEFAULTS: JSON = {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}
_RESIDENT_UPGRADE_DEFAULTS: JSON = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}
_UNREACHABLE_DEFAULTS: JSON = {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
_FETCH_DEFAULTS: JSON = {"extract": True, "executable": False, "cache": False}
_DOCKER_DEFAULTS: JSON = {"forcePullImage": False, "privileged": False, "parameters": []}
_HEALTH_DEFAULTS: JSON = {
    "gracePeriodSeconds": 300,
    "intervalSeconds": 60,
    "timeoutSeconds": 20,
    "maxConsecutiveFailures": 3,
    "delaySeconds": 15,
}
_HEALTH_PROTOCOL_DEFAULTS: dict[str, JSON] = {
    "HTTP": {"path": "/", "ignoreHttp1xx": False},
    "HTTPS": {"path": "/", "ignoreHttp1xx": False},
    "TCP": {},
    "COMMAND": {},
    "MESOS_HTTP": {"path": "/", "ipProtocol": "IPv4"},
    "MESOS_HTTPS": {"path": "/", "ipProtocol": "IPv4"},
    "MESOS_TCP": {"ipProtocol": "IPv4"},
}
_MARATHON_PROBES = frozenset({"HTTP", "HTTPS", "TCP"})
"""Checks Marathon itself runs: the only ones whose ``portIndex`` it validates."""
_MESOS_PROBES = frozenset({"COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"})
_READINESS_DEFAULTS: JSON = {
    "name": "readinessCheck",
    "protocol": "HTTP",
    "path": "/",
    "portName": "http-api",
    "intervalSeconds": 30,
    "timeoutSeconds": 10,
    "httpStatusCodesForReady": [200],
    "preserveLastResponse": False,
}
_LEGACY_NETWORK_MODES = {"BRIDGE": "container/bridge", "HOST": "host", "USER": "container",
                         "NONE": "container"}
_NETWORK_MODES = frozenset({"container", "container/bridge", "host"})
_CONSTRAINT_OPERATORS = frozenset(
    {"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}
)
_ILLEGAL_OPERATOR = (
    "Constraint operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER "
    "or UNLIKE"
)
_SINGLE_INSTANCE_LABEL = "MARATHON_SINGLE_INSTANCE_APP"


ALLOCATED_BY_REQUEST: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "allocated_by_request", default=None)
"""The ports allocated while serving one request (each request runs in its own task), so
that a request that ends refused, or a dry run, can give them back."""


class ServicePortAllocator:
    """Hands out service ports from Marathon's range for ports declared 0.

    Marathon's defaults: ``--local_port_min 10000``, ``--local_port_max 20000``. A port once
    given to an app stays with it across updates that keep the port declared 0. Ports are handed
    out in ascending order from the lowest free one, like the ``10013``/``10015`` of Marathon's
    examples, so that a fresh dev cluster gives the same ports every run.
    """

    def __init__(
        self, *, port_min: int = SERVICE_PORT_MIN, port_max: int = SERVICE_PORT_MAX
    ) -> None:
        if port_min > port_max:
            raise ValueError(f"empty service port range {port_min}..{port_max}")
        self._min = port_min
        self._max = port_max
        self._taken: set[int] = set()
        self._next = port_min

    def reserve(self, ports: Iterable[int]) -> None:
        """Mark ports as taken (used when state is reloaded from disk, and for declared ports)."""
        self._taken.update(p for p in ports if p)

    def release(self, ports: Iterable[int]) -> None:
        """Give ports back (the app was deleted or no longer declares them)."""
        for port in ports:
            self._taken.discard(port)
            if self._min <= port < self._next:
                self._next = port

    def allocate(self) -> int:
        """The lowest free port of the range, now taken."""
        port = self._next
        while port <= self._max and port in self._taken:
            port += 1
        if port > self._max:
            raise RuntimeError(
                f"Marathon's service port range {self._min}..{self._max} is exhausted"
            )
        self._taken.add(port)
        self._next = port + 1
        journal = ALLOCATED_BY_REQUEST.get()
        if journal is not None:
            journal.append(port)
        return port

    def taken(self) -> frozenset[int]:
        return frozenset(self._taken)


# -- ids ------------------------------------------------------------------------------------


def absolute_id(app_id: str, *, base: str = "/") -> str:
    """``PathId.canonicalPath``: a relative id resolved against ``base``, ``.``/``..`` applied."""
    path = app_id if app_id.startswith("/") else base.rstrip("/") + "/" + app_id
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def parent_id(app_id: str) -> str:
    return app_id.rsplit("/", 1)[0] or "/"


def _id_problems(raw: str) -> list[str]:
    """``PathId.pathIdValidator`` messages for one id (relative ids are allowed)."""
    segments = [s for s in raw.split("/") if s]
    problems = []
    if not all(ID_SEGMENT.fullmatch(s) for s in segments):
        problems.append(ID_SEGMENT_MESSAGE)
    if segments and segments[-1] in RESERVED_ID_KEYWORDS:
        problems.append(
            "must not end with any of the following reserved keywords: "
            + ", ".join(RESERVED_ID_KEYWORDS)
        )
    return problems


# -- validation -----------------------------------------------------------------------------


class _Problems:
    """Marathon's ``details``: errors grouped by JSON path, in the order they were found."""

    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        errors = self.by_path.setdefault(path, [])
        if message not in errors:
            errors.append(message)

    def details(self) -> list[JSON]:
        return [{"path": path, "errors": errors} for path, errors in self.by_path.items()]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_Kind = Literal["string", "number", "int", "boolean", "array", "object"]
_EXPECTED = {
    "string": "error.expected.jsstring",
    "number": "error.expected.jsnumber",
    "int": "error.expected.jsnumber",
    "boolean": "error.expected.jsboolean",
    "array": "error.expected.jsarray",
    "object": "error.expected.jsobject",
}


def _shape(
    problems: _Problems,
    path: str,
    value: Any,
    kind: _Kind,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    enum: Iterable[str] | None = None,
) -> bool:
    """Play's ``Reads`` of one field as Marathon's generated RAML code does it; None is absent."""
    if value is None:
        return True
    if not _IS_KIND[kind](value):
        problems.add(path, _EXPECTED[kind])
        return False
    if kind == "int" and not _is_int(value):
        problems.add(path, "error.expected.int")
        return False
    if minimum is not None and value < minimum:
        problems.add(path, "error.min")
        return False
    if maximum is not None and value > maximum:
        problems.add(path, "error.max")
        return False
    if enum is not None and value not in set(enum):
        problems.add(path, "error.unknown.enum.literal")
        return False
    return True


_IS_KIND: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "int": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


_TOP_LEVEL_SHAPES: tuple[tuple[str, _Kind, float | None, float | None], ...] = (
    ("cmd", "string", None, None),
    ("args", "array", None, None),
    ("user", "string", None, None),
    ("env", "object", None, None),
    ("instances", "int", 0, None),
    ("cpus", "number", 0.001, None),
    ("mem", "number", 0, None),
    ("disk", "number", 0, None),
    ("gpus", "int", 0, None),
    ("executor", "string", None, None),
    ("constraints", "array", None, None),
    ("uris", "array", None, None),
    ("fetch", "array", None, None),
    ("storeUrls", "array", None, None),
    ("ports", "array", None, None),
    ("portDefinitions", "array", None, None),
    ("requirePorts", "boolean", None, None),
    ("backoffSeconds", "int", 0, None),
    ("backoffFactor", "number", 1.0, None),
    ("maxLaunchDelaySeconds", "int", 0, None),
    ("container", "object", None, None),
    ("healthChecks", "array", None, None),
    ("readinessChecks", "array", None, None),
    ("dependencies", "array", None, None),
    ("upgradeStrategy", "object", None, None),
    ("labels", "object", None, None),
    ("acceptedResourceRoles", "array", None, None),
    ("networks", "array", None, None),
    ("secrets", "object", None, None),
    ("taskKillGracePeriodSeconds", "int", 0, None),
    ("tty", "boolean", None, None),
    ("role", "string", None, None),
)


def _check_shapes(app: JSON, problems: _Problems) -> None:
    """The ``Invalid JSON`` phase: what Marathon's RAML reader rejects before any rule runs."""
    if "id" not in app or app["id"] is None:
        problems.add("/id", "error.path.missing")
    else:
        _shape(problems, "/id", app["id"], "string")
    for field, kind, minimum, maximum in _TOP_LEVEL_SHAPES:
        _shape(problems, f"/{field}", app.get(field), kind, minimum=minimum, maximum=maximum)
    if isinstance(app.get("cmd"), str) and app["cmd"] == "":
        problems.add("/cmd", "error.minLength")
    _shape(problems, "/killSelection", app.get("killSelection"), "string",
           enum=("YOUNGEST_FIRST", "OLDEST_FIRST"))
    for key in ("args", "storeUrls", "acceptedResourceRoles", "uris", "dependencies"):
        for i, item in enumerate(_list(app.get(key))):
            _shape(problems, f"/{key}({i})", item, "string")
    for key, value in _dict(app.get("labels")).items():
        _shape(problems, f"/labels/{key}", value, "string")
    for key, value in _dict(app.get("env")).items():
        if not isinstance(value, str | dict):
            problems.add(f"/env/{key}", "error.expected.jsstring")
    for i, item in enumerate(_list(app.get("constraints"))):
        if not isinstance(item, list) or not all(isinstance(p, str | int) for p in item):
            problems.add(f"/constraints({i})", "error.expected.jsarray")
    for i, port in enumerate(_list(app.get("ports"))):
        _shape(problems, f"/ports({i})", port, "int", minimum=0, maximum=65535)
    for i, item in enumerate(_list(app.get("fetch"))):
        base = f"/fetch({i})"
        if _shape(problems, base, item, "object"):
            if not isinstance(item.get("uri"), str):
                problems.add(f"{base}/uri", "error.path.missing")
            for flag in ("extract", "executable", "cache"):
                _shape(problems, f"{base}/{flag}", item.get(flag), "boolean")
    for i, item in enumerate(_list(app.get("portDefinitions"))):
        base = f"/portDefinitions({i})"
        if _shape(problems, base, item, "object"):
            _shape(problems, f"{base}/port", item.get("port"), "int", minimum=0, maximum=65535)
            _shape(problems, f"{base}/name", item.get("name"), "string")
            _shape(problems, f"{base}/protocol", item.get("protocol"), "string",
                   enum=("tcp", "udp", "udp,tcp"))
            _shape(problems, f"{base}/labels", item.get("labels"), "object")
    strategy = app.get("upgradeStrategy")
    if isinstance(strategy, dict):
        for field in ("minimumHealthCapacity", "maximumOverCapacity"):
            _shape(problems, f"/upgradeStrategy/{field}", strategy.get(field), "number",
                   minimum=0.0, maximum=1.0)
    unreachable = app.get("unreachableStrategy")
    if isinstance(unreachable, dict):
        for field in ("inactiveAfterSeconds", "expungeAfterSeconds"):
            _shape(problems, f"/unreachableStrategy/{field}", unreachable.get(field), "int",
                   minimum=0)
    elif unreachable is not None and unreachable != "disabled":
        problems.add("/unreachableStrategy", "error.expected.jsobject")
    for i, network in enumerate(_list(app.get("networks"))):
        base = f"/networks({i})"
        if _shape(problems, base, network, "object"):
            _shape(problems, f"{base}/mode", network.get("mode"), "string", enum=_NETWORK_MODES)
            _shape(problems, f"{base}/name", network.get("name"), "string")
    _check_container_shapes(app.get("container"), problems)
    for i, check in enumerate(_list(app.get("healthChecks"))):
        base = f"/healthChecks({i})"
        if not _shape(problems, base, check, "object"):
            continue
        _shape(problems, f"{base}/protocol", check.get("protocol"), "string",
               enum=_HEALTH_PROTOCOL_DEFAULTS)
        _shape(problems, f"{base}/ipProtocol", check.get("ipProtocol"), "string",
               enum=("IPv4", "IPv6"))
        _shape(problems, f"{base}/path", check.get("path"), "string")
        for field in ("gracePeriodSeconds", "intervalSeconds", "maxConsecutiveFailures",
                      "delaySeconds"):
            _shape(problems, f"{base}/{field}", check.get(field), "int", minimum=0)
        _shape(problems, f"{base}/timeoutSeconds", check.get("timeoutSeconds"), "int")
        _shape(problems, f"{base}/portIndex", check.get("portIndex"), "int", minimum=0)
        _shape(problems, f"{base}/port", check.get("port"), "int", minimum=0, maximum=65535)
        command = check.get("command")
        if (
            _shape(problems, f"{base}/command", command, "object")
            and command is not None
            and not isinstance(command.get("value"), str)
        ):
            problems.add(f"{base}/command/value", "error.path.missing")
    for i, check in enumerate(_list(app.get("readinessChecks"))):
        base = f"/readinessChecks({i})"
        if not _shape(problems, base, check, "object"):
            continue
        _shape(problems, f"{base}/protocol", check.get("protocol"), "string",
               enum=("HTTP", "HTTPS"))
        _shape(problems, f"{base}/intervalSeconds", check.get("intervalSeconds"), "int",
               minimum=0)
        _shape(problems, f"{base}/timeoutSeconds", check.get("timeoutSeconds"), "int",
               minimum=1)


def _check_container_shapes(container: Any, problems: _Problems) -> None:
    if not isinstance(container, dict):
        return
    _shape(problems, "/container/type", container.get("type"), "string",
           enum=("DOCKER", "MESOS"))
    _shape(problems, "/container/volumes", container.get("volumes"), "array")
    docker = container.get("docker")
    if _shape(problems, "/container/docker", docker, "object") and docker is not None:
        if container.get("type", "DOCKER") == "DOCKER" and docker.get("image") is None:
            problems.add("/container/docker/image", "error.path.missing")
        _shape(problems, "/container/docker/image", docker.get("image"), "string")
        for flag in ("privileged", "forcePullImage"):
            _shape(problems, f"/container/docker/{flag}", docker.get(flag), "boolean")
        _shape(problems, "/container/docker/parameters", docker.get("parameters"), "array")
        _shape(problems, "/container/docker/network", docker.get("network"), "string",
               enum=_LEGACY_NETWORK_MODES)
        _shape(problems, "/container/docker/portMappings", docker.get("portMappings"), "array")
    for where, mappings in (
        ("/container/portMappings", container.get("portMappings")),
        ("/container/docker/portMappings", _dict(docker).get("portMappings")),
    ):
        if not _shape(problems, where, mappings, "array") or mappings is None:
            continue
        for i, mapping in enumerate(mappings):
            base = f"{where}({i})"
            if not _shape(problems, base, mapping, "object"):
                continue
            for field in ("containerPort", "hostPort", "servicePort"):
                _shape(problems, f"{base}/{field}", mapping.get(field), "int",
                       minimum=0, maximum=65535)
            _shape(problems, f"{base}/name", mapping.get("name"), "string")
            _shape(problems, f"{base}/protocol", mapping.get("protocol"), "string",
                   enum=("tcp", "udp", "udp,tcp"))
            _shape(problems, f"{base}/labels", mapping.get("labels"), "object")


def _check_rules(raw: JSON, app: JSON, problems: _Problems) -> None:
    """The ``Object is not valid`` phase on the canonical app (``validateCanonicalAppAPI``)."""
    raw_id = raw["id"]
    for message in _id_problems(raw_id):
        problems.add("/id", message)
    if app["id"] == "/":
        problems.add("/id", "Path must contain at least one path element")
        problems.add("/", "must not be root")
    _check_deprecated(raw, problems)
    cmd, args, container = app.get("cmd"), app.get("args"), app.get("container")
    has_cmd, has_args = cmd is not None, bool(args)
    has_image = _has_image(container)
    if not ((has_cmd != has_args) or (not (has_cmd and has_args) and has_image)):
        problems.add("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a "
                          "'container'.")
    if isinstance(cmd, str) and len(cmd) <= 1:
        # Marathon's own check is ``length > 1``: a one-letter command is refused too.
        problems.add("/", "must not be an empty string")
    networks = app["networks"]
    modes = [n.get("mode") for n in networks]
    mappings = _dict(container).get("portMappings") or []
    if "host" in modes and mappings:
        problems.add("/", "portMappings are not allowed with host-networking")
    if any(m != "host" for m in modes) and raw.get("portDefinitions"):
        problems.add("/", "portDefinitions are only allowed with host-networking")
    if "host" in modes and len(modes) > 1:
        problems.add("/networks", "host networking may not be combined with other networks")
    if (
        _dict(container).get("type", "DOCKER") == "DOCKER"
        and container is not None
        and modes.count("container") > 1
    ):
        problems.add("/", "may only specify a single container network when using the Docker "
                          "container engine")
    if container is not None and _dict(container.get("docker")).get("image") == "":
        problems.add("/container/docker/image", "must not be empty")
    _check_ports(app, problems)
    _check_health_checks(app, _list(raw.get("healthChecks")), problems)
    _check_readiness_checks(app, problems)
    for i, constraint in enumerate(app["constraints"]):
        problem = _constraint_problem(constraint)
        if problem:
            problems.add(f"/constraints({i})", problem)
    for i, dep in enumerate(raw.get("dependencies") or []):
        for message in _id_problems(dep):
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
    if app["gpus"] > 0 and _dict(container).get("type", "DOCKER") == "DOCKER" and container:
        problems.add("/", "GPU resources only work with the Mesos containerizer")
    if app["labels"].get(_SINGLE_INSTANCE_LABEL) == "true":
        if app["instances"] > 1:
            problems.add("/", "Single instance app may only have one instance")
        strategy = raw.get("upgradeStrategy") or {}
        for field in ("minimumHealthCapacity", "maximumOverCapacity"):
            if field in strategy and strategy[field] != 0:
                problems.add(f"/upgradeStrategy/{field}",
                             f"got {strategy[field]}, expected 0.0")


def _check_deprecated(raw: JSON, problems: _Problems) -> None:
    """``validateOldAppAPI``: the deprecated fields may not contradict the canonical ones."""
    container = _dict(raw.get("container"))
    docker = _dict(container.get("docker"))
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


def _check_ports(app: JSON, problems: _Problems) -> None:
    definitions = app.get("portDefinitions") or []
    names = [d["name"] for d in definitions if d.get("name") is not None]
    if len(names) != len(set(names)):
        problems.add("/portDefinitions", "Port names must be unique.")
    chosen = [d.get("port", 0) for d in definitions if d.get("port", 0)]
    if len(chosen) != len(set(chosen)):
        problems.add("/portDefinitions", "Ports must be unique.")
    mappings = _dict(app.get("container")).get("portMappings") or []
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


def _check_health_checks(app: JSON, submitted: list[JSON], problems: _Problems) -> None:
    """Rules on health checks; ``portIndex`` is judged as submitted, before it defaults to 0."""
    port_count = len(_port_items(app))
    docker = _dict(app.get("container")).get("type", "DOCKER") == "DOCKER" and bool(
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


def _check_readiness_checks(app: JSON, problems: _Problems) -> None:
    checks = app["readinessChecks"]
    if len(checks) > 1:
        problems.add("/readinessChecks", f"got {len(checks)}, expected 1 or less")
    names = {item.get("name") for item in _port_items(app) if item.get("name")}
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


def _validate(definition: JSON) -> tuple[str, list[JSON]]:
    problems = _Problems()
    if not isinstance(definition, dict):
        problems.add("/", "error.expected.jsobject")
        return INVALID_JSON, problems.details()
    _check_shapes(definition, problems)
    if problems.by_path:
        return INVALID_JSON, problems.details()
    _check_rules(definition, _canonical(definition), problems)
    return INVALID_OBJECT, problems.details()


# -- canonical form and defaults ------------------------------------------------------------


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (several times faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _has_image(container: Any) -> bool:
    container = _dict(container)
    kind = container.get("type", "DOCKER")
    docker, appc = container.get("docker"), container.get("appc")
    return (docker is not None and appc is None and kind in ("DOCKER", "MESOS")) or (
        docker is None and appc is not None and kind == "MESOS"
    )


def _canonical(definition: JSON) -> JSON:
    """The definition in Marathon's canonical 1.5+ form with every default, ports not yet assigned.

    This is what ``AppNormalization`` and the RAML reader make of a body before validation.
    """
    source = {
        k: v for k, v in definition.items() if k not in RUNTIME_FIELDS and v is not None
    }
    app: JSON = {"id": absolute_id(str(source.get("id", "/")))}
    for key, default in _APP_DEFAULTS:
        value = source.get(key)
        app[key] = _copy(value) if value is not None else _copy(default)
    if not app["fetch"] and source.get("uris"):
        app["fetch"] = [{"uri": uri} for uri in source["uris"]]
    app["fetch"] = [{"uri": f.get("uri"), **_FETCH_DEFAULTS, **f} for f in app["fetch"]]
    app["constraints"] = [[str(part) for part in c] for c in app["constraints"]]
    app["dependencies"] = [absolute_id(d, base=parent_id(app["id"])) for d in app["dependencies"]]
    resident = any(
        "persistent" in _dict(v) for v in _list(_dict(source.get("container")).get("volumes"))
    )
    app["upgradeStrategy"] = {
        **(_RESIDENT_UPGRADE_DEFAULTS if resident else _UPGRADE_DEFAULTS),
        **_dict(source.get("upgradeStrategy")),
    }
    unreachable = source.get("unreachableStrategy")
    app["unreachableStrategy"] = (
        "disabled" if unreachable == "disabled"
        else {**_UNREACHABLE_DEFAULTS, **_dict(unreachable)}
    )
    for key in ("tty", "taskKillGracePeriodSeconds", "residency", "resourceLimits",
                "executorResources", "check"):
        if key in source:
            app[key] = _copy(source[key])
    _canonical_networking(source, app)
    app["healthChecks"] = [_health_check(c) for c in app["healthChecks"]]
    app["readinessChecks"] = [{**_READINESS_DEFAULTS, **c} for c in app["readinessChecks"]]
    return app


def _canonical_networking(source: JSON, app: JSON) -> None:
    """Networks, port definitions and port mappings as Marathon 1.5+ keeps them."""
    container = app["container"]
    legacy_mode = None
    legacy_mappings = None
    if container is not None:
        container.setdefault("type", "DOCKER")
        container.setdefault("volumes", [])
        docker = container.get("docker")
        if docker is not None:
            legacy_mode = docker.pop("network", None)
            legacy_mappings = docker.pop("portMappings", None)
            container["docker"] = {**_DOCKER_DEFAULTS, **docker}
        if container.get("portMappings") is None and legacy_mappings is not None:
            container["portMappings"] = legacy_mappings
    networks = source.get("networks")
    if networks:
        app["networks"] = [{"mode": "container", **n} for n in networks]
    elif legacy_mode is not None:
        app["networks"] = [{"mode": _LEGACY_NETWORK_MODES.get(legacy_mode, "host")}]
    elif source.get("ipAddress") is not None:
        ip = _dict(source["ipAddress"])
        network = {"mode": "container"}
        if ip.get("networkName"):
            network["name"] = ip["networkName"]
        app["networks"] = [network]
    else:
        app["networks"] = [{"mode": "host"}]
    for network in app["networks"]:
        if network.get("labels") is not None:
            network["labels"] = dict(network["labels"])
    host = all(n.get("mode") == "host" for n in app["networks"])
    bridge = any(n.get("mode") == "container/bridge" for n in app["networks"])
    if host:
        definitions = source.get("portDefinitions")
        if definitions is None and source.get("ports") is not None:
            definitions = [{"port": p} for p in source["ports"]]
        if definitions is None:
            definitions = [{"port": 0, "name": "default"}]
        app["portDefinitions"] = [
            {"port": 0, "protocol": "tcp", **_copy(d), "labels": _copy(d.get("labels") or {})}
            for d in definitions
        ]
        if container is not None and not container.get("portMappings"):
            container.pop("portMappings", None)
        return
    # Non-host networking: Marathon writes no portDefinitions at all.
    app.pop("portDefinitions", None)
    if container is None:
        return
    mappings = container.get("portMappings")
    if mappings is None:
        mappings = [{"name": "default"}]
    filled = []
    for mapping in mappings:
        m = {"containerPort": 0, "protocol": "tcp", "servicePort": 0, **_copy(mapping)}
        if bridge and m.get("hostPort") is None:
            m["hostPort"] = 0
        m["labels"] = m.get("labels") or {}
        filled.append(m)
    container["portMappings"] = filled


def _health_check(check: JSON) -> JSON:
    protocol = check.get("protocol") or "HTTP"
    out: JSON = {**_HEALTH_DEFAULTS, **_HEALTH_PROTOCOL_DEFAULTS.get(protocol, {})}
    out.update((k, _copy(v)) for k, v in check.items() if v is not None)
    out["protocol"] = protocol
    if protocol != "COMMAND" and out.get("port") is None and out.get("portIndex") is None:
        out["portIndex"] = 0
    return out


def fill_defaults(
    definition: JSON, *, allocator: ServicePortAllocator, previous: JSON | None = None
) -> JSON:
    """The app as Marathon stores and returns it: every default filled in, service ports assigned.

    ``previous`` is the currently stored app (for keeping already assigned service ports).
    Does not set runtime fields (``version``, ``versionInfo``, task counts, ``deployments``).
    Never mutates its arguments. Service ports ``previous`` held and the new app does not are
    given back to ``allocator``.
    """
    app = _canonical(definition)
    kept = service_ports(previous) if previous else []
    items = _port_items(app)
    field = "port" if app.get("portDefinitions") is not None else "servicePort"
    declared = [int(item.get(field) or 0) for item in items]
    allocator.reserve(declared)
    used = set(declared)
    for i, item in enumerate(items):
        if item.get(field):
            continue
        reuse = kept[i] if i < len(kept) else 0
        if reuse and reuse not in used:
            allocator.reserve([reuse])
            item[field] = reuse
        else:
            item[field] = allocator.allocate()
        used.add(item[field])
    allocator.release(p for p in kept if p and p not in used)
    return app


def _port_items(app: JSON) -> list[JSON]:
    """The app's port mappings when it has any, else its port definitions (``portIndices``)."""
    mappings = _dict(app.get("container")).get("portMappings")
    if mappings:
        return list(mappings)
    return list(app.get("portDefinitions") or [])


def service_ports(app: JSON | None) -> list[int]:
    """The service ports an app holds, by port index (for releasing them when it is deleted)."""
    if not app:
        return []
    mappings = _dict(app.get("container")).get("portMappings")
    if mappings:
        return [int(m.get("servicePort") or 0) for m in mappings]
    return [int(d.get("port") or 0) for d in app.get("portDefinitions") or []]


def port_names(app: JSON) -> list[str | None]:
    """Port names by index (``portName`` of readiness checks, ``PORT_<NAME>`` variables)."""
    return [item.get("name") for item in _port_items(app)]


# -- updates --------------------------------------------------------------------------------


def apply_partial_update(stored: JSON, update: JSON) -> JSON:
    """Marathon's PATCH / ``partialUpdate=true`` merge of ``update`` into ``stored``.

    Top-level fields present (and not null) in ``update`` replace the stored ones whole;
    absent ones keep the stored value; ``id`` stays. Deprecated fields in ``update`` are first
    turned into the canonical ones they stand for, so ``{"ports": [0]}`` replaces
    ``portDefinitions`` and a ``container.docker.network`` replaces ``networks``.
    """
    merged = {k: _copy(v) for k, v in stored.items() if k not in RUNTIME_FIELDS}
    changes = {
        k: v for k, v in update.items() if v is not None and k not in RUNTIME_FIELDS and k != "id"
    }
    if "uris" in changes:
        uris = changes.pop("uris")
        changes.setdefault("fetch", [{"uri": u} for u in uris])
    if "ports" in changes:
        ports = changes.pop("ports")
        changes.setdefault("portDefinitions", [{"port": p} for p in ports])
    if "ipAddress" in changes:
        ip = _dict(changes.pop("ipAddress"))
        network = {"mode": "container"}
        if ip.get("networkName"):
            network["name"] = ip["networkName"]
        changes.setdefault("networks", [network])
    container = changes.get("container")
    if isinstance(container, dict) and isinstance(container.get("docker"), dict):
        docker = dict(container["docker"])
        container = {**container, "docker": docker}
        mode = docker.pop("network", None)
        if mode is not None:
            changes.setdefault("networks", [{"mode": _LEGACY_NETWORK_MODES.get(mode, "host")}])
        mappings = docker.pop("portMappings", None)
        if mappings is not None and container.get("portMappings") is None:
            container["portMappings"] = mappings
        changes["container"] = container
    for key, value in changes.items():
        merged[key] = _copy(value)
    if "networks" in changes and "portDefinitions" not in changes:
        host = all(_dict(n).get("mode", "container") == "host" for n in changes["networks"])
        if not host:
            # The stored default port definition belonged to host networking.
            merged.pop("portDefinitions", None)
    return merged


def change_kind(old: JSON, new: JSON) -> ChangeKind:
    """``"none"``, ``"scale"`` (only ``instances`` differs) or ``"config"``.

    Both arguments are full apps as returned by :func:`fill_defaults`; runtime fields are
    ignored. Marathon sets ``lastScalingAt`` on a scale and both timestamps on a config change,
    and restarts tasks only on a config change.
    """
    differs = [k for k in old.keys() | new.keys() if k not in RUNTIME_FIELDS
               and old.get(k) != new.get(k)]
    if not differs:
        return "none"
    return "scale" if differs == ["instances"] else "config"


# -- groups ---------------------------------------------------------------------------------


def flatten_group(group: JSON, *, base: str) -> list[JSON]:
    """The apps of a ``PUT /v2/groups/{id}`` body, ids made absolute, nested groups included.

    ``base`` is the group id of the URL. The body's own ``id``, when present, is resolved
    against it (``PathId.canonicalPath``); app ids and sub-group ids are resolved against the
    group that holds them.
    """
    group_id = _group_id(group, base=base)
    apps = []
    for app in _list(group.get("apps")):
        raw_id = app.get("id")
        app_id = absolute_id(raw_id, base=group_id) if isinstance(raw_id, str) else raw_id
        apps.append({**app, "id": app_id})
    for sub in _list(group.get("groups")):
        apps.extend(flatten_group(sub, base=group_id))
    return apps


def _group_id(group: JSON, *, base: str) -> str:
    raw = group.get("id")
    base = absolute_id(base)
    return absolute_id(raw, base=base) if isinstance(raw, str) and raw else base


def group_ids(group: JSON, *, base: str) -> list[str]:
    """Every group id a ``PUT /v2/groups`` body declares, itself first, ids made absolute."""
    group_id = _group_id(group, base=base)
    ids = [group_id]
    for sub in _list(group.get("groups")):
        ids.extend(group_ids(sub, base=group_id))
    return ids


def validate_group(group: JSON, *, base: str = "/") -> list[JSON]:
    """Marathon's 422 ``details`` for a group body; each app's problems under ``/apps(i)``.

    Apps whose absolute id is not a direct child of their group are refused the way
    ``PathId.validPathWithBase`` does.
    """
    problems = _Problems()
    _validate_group(group, base=base, prefix="", problems=problems)
    return problems.details()


def _validate_group(group: Any, *, base: str, prefix: str, problems: _Problems) -> None:
    if not isinstance(group, dict):
        problems.add(prefix or "/", "error.expected.jsobject")
        return
    raw_id = group.get("id")
    if raw_id is not None and not isinstance(raw_id, str):
        problems.add(f"{prefix}/id", "error.expected.jsstring")
        return
    if raw_id:
        for message in _id_problems(raw_id):
            problems.add(f"{prefix}/id", message)
    group_id = _group_id(group, base=base)
    for key in ("apps", "groups"):
        if group.get(key) is not None and not isinstance(group[key], list):
            problems.add(f"{prefix}/{key}", "error.expected.jsarray")
            return
    for i, app in enumerate(_list(group.get("apps"))):
        where = f"{prefix}/apps({i})"
        if not isinstance(app, dict):
            problems.add(where, "error.expected.jsobject")
            continue
        raw_app_id = app.get("id")
        app_id = absolute_id(raw_app_id, base=group_id) if isinstance(raw_app_id, str) else None
        for detail in validate_app({**app, "id": app_id} if app_id else app):
            for message in detail["errors"]:
                problems.add(where + (detail["path"] if detail["path"] != "/" else ""), message)
        if app_id is not None and parent_id(app_id) != group_id:
            problems.add(f"{where}/id",
                         f"Identifier is not child of {group_id}. Hint: use relative paths.")
    for i, sub in enumerate(_list(group.get("groups"))):
        where = f"{prefix}/groups({i})"
        if isinstance(sub, dict) and not sub.get("id"):
            problems.add(f"{where}/id", "error.path.missing")
            continue
        _validate_group(sub, base=group_id, prefix=where, problems=problems)
        sub_id = _group_id(_dict(sub), base=group_id)
        if isinstance(sub, dict) and parent_id(sub_id) != group_id:
            problems.add(f"{where}/id",
                         f"Identifier is not child of {group_id}. Hint: use relative paths.")


__all__ = [
    "INVALID_JSON", "INVALID_OBJECT", "JSON", "RUNTIME_FIELDS", "ServicePortAllocator",
    "absolute_id", "apply_partial_update", "change_kind", "fill_defaults", "flatten_group",
    "group_ids", "parent_id", "port_names", "rejection", "service_ports", "validate_app",
    "validate_group",
]
