"""The first phase of Marathon's validation: JSON types and ranges (``Invalid JSON``, Play's keys).

A body whose shapes are wrong is refused before any rule is looked at, with Play's error keys
(``error.expected.jsnumber``...), as Marathon's RAML reader does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from reconciler.devcluster import defaults, ids, plain

JSON = dict[str, Any]

class Problems:
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
    problems: Problems,
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


def check_shapes(app: JSON, problems: Problems) -> None:
    """The ``Invalid JSON`` phase: what Marathon's RAML reader rejects before any rule runs."""
    if "id" not in app or app["id"] is None:
        problems.add("/id", "error.path.missing")
    elif _shape(problems, "/id", app["id"], "string") and not ids.RAML_PATH_ID.match(app["id"]):
        problems.add("/id", "error.pattern")
    for field, kind, minimum, maximum in _TOP_LEVEL_SHAPES:
        _shape(problems, f"/{field}", app.get(field), kind, minimum=minimum, maximum=maximum)
    if isinstance(app.get("cmd"), str) and app["cmd"] == "":
        problems.add("/cmd", "error.minLength")
    _shape(problems, "/killSelection", app.get("killSelection"), "string",
           enum=("YOUNGEST_FIRST", "OLDEST_FIRST"))
    for key in ("args", "storeUrls", "acceptedResourceRoles", "uris", "dependencies"):
        for i, item in enumerate(plain.as_list(app.get(key))):
            _shape(problems, f"/{key}({i})", item, "string")
    for key, value in plain.as_dict(app.get("labels")).items():
        _shape(problems, f"/labels/{key}", value, "string")
    for key, value in plain.as_dict(app.get("env")).items():
        if not isinstance(value, str | dict):
            problems.add(f"/env/{key}", "error.expected.jsstring")
    for i, item in enumerate(plain.as_list(app.get("constraints"))):
        if not isinstance(item, list) or not all(isinstance(p, str | int) for p in item):
            problems.add(f"/constraints({i})", "error.expected.jsarray")
    for i, port in enumerate(plain.as_list(app.get("ports"))):
        _shape(problems, f"/ports({i})", port, "int", minimum=0, maximum=65535)
    for i, item in enumerate(plain.as_list(app.get("fetch"))):
        base = f"/fetch({i})"
        if _shape(problems, base, item, "object"):
            if not isinstance(item.get("uri"), str):
                problems.add(f"{base}/uri", "error.path.missing")
            for flag in ("extract", "executable", "cache"):
                _shape(problems, f"{base}/{flag}", item.get(flag), "boolean")
    for i, item in enumerate(plain.as_list(app.get("portDefinitions"))):
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
    for i, network in enumerate(plain.as_list(app.get("networks"))):
        base = f"/networks({i})"
        if _shape(problems, base, network, "object"):
            _shape(problems, f"{base}/mode", network.get("mode"), "string",
                   enum=defaults.NETWORK_MODES)
            _shape(problems, f"{base}/name", network.get("name"), "string")
    _check_container_shapes(app.get("container"), problems)
    for i, check in enumerate(plain.as_list(app.get("healthChecks"))):
        base = f"/healthChecks({i})"
        if not _shape(problems, base, check, "object"):
            continue
        _shape(problems, f"{base}/protocol", check.get("protocol"), "string",
               enum=defaults.HEALTH_PROTOCOLS)
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
    for i, check in enumerate(plain.as_list(app.get("readinessChecks"))):
        base = f"/readinessChecks({i})"
        if not _shape(problems, base, check, "object"):
            continue
        _shape(problems, f"{base}/protocol", check.get("protocol"), "string",
               enum=("HTTP", "HTTPS"))
        _shape(problems, f"{base}/intervalSeconds", check.get("intervalSeconds"), "int",
               minimum=0)
        _shape(problems, f"{base}/timeoutSeconds", check.get("timeoutSeconds"), "int",
               minimum=1)


def _check_container_shapes(container: Any, problems: Problems) -> None:
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
               enum=defaults.LEGACY_NETWORK_MODES)
        _shape(problems, "/container/docker/portMappings", docker.get("portMappings"), "array")
    for where, mappings in (
        ("/container/portMappings", container.get("portMappings")),
        ("/container/docker/portMappings", plain.as_dict(docker).get("portMappings")),
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
