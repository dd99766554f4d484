"""Marathon's app rules for the dev cluster: defaults, validation, service ports, change kinds.

Pure functions, no I/O. The defaults follow Marathon's RAML types (``app.raml``,
``healthCheck.raml``, ``appContainer.raml``, ``unreachableStrategy.raml``) in the canonical
1.5+ form that Marathon's API generates: legacy ``ports``, ``uris``,
``container.docker.network`` and ``container.docker.portMappings`` are migrated to
``portDefinitions``, ``fetch``, ``networks`` and ``container.portMappings``.
This module shares no code with the controller on purpose.
"""

from __future__ import annotations

import copy
import re
from typing import Any

JSON = dict[str, Any]

ID_SEGMENT = re.compile(r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$")
ID_SEGMENT_MESSAGE = (
    "must fully match regular expression "
    "'^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|"
    "(\\.|\\.\\.)$'"
)

_APP_DEFAULTS: JSON = {
    "instances": 1,
    "cpus": 1.0,
    "mem": 128.0,
    "disk": 0.0,
    "gpus": 0,
    "executor": "",
    "constraints": [],
    "fetch": [],
    "backoffSeconds": 1,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 300,
    "requirePorts": False,
    "labels": {},
    "env": {},
    "secrets": {},
    "healthChecks": [],
    "readinessChecks": [],
    "dependencies": [],
    "killSelection": "YOUNGEST_FIRST",
    "role": "*",
}
_UPGRADE_DEFAULTS: JSON = {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}
_UNREACHABLE_DEFAULTS: JSON = {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
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
_DOCKER_DEFAULTS: JSON = {"forcePullImage": False, "privileged": False, "parameters": []}
_LEGACY_NETWORK = {"BRIDGE": "container/bridge", "HOST": "host", "USER": "container"}
_CONSTRAINT_OPERATORS = {"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}
_RUNTIME_FIELDS = frozenset(
    {
        "version", "versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy",
        "tasksUnhealthy", "deployments", "tasks", "lastTaskFailure", "counts", "readinessCheckResults",
        "taskStats",
    }
)


class ServicePortAllocator:
    """Hands out service ports from Marathon's range for ports declared 0.

    Marathon's defaults: ``--local_port_min 10000``, ``--local_port_max 20000``. A port once
    given to an app stays with it across updates that keep the port declared 0.
    """

    def __init__(self, *, port_min: int = 10000, port_max: int = 20000) -> None:
        self._min = port_min
        self._max = port_max
        self._taken: set[int] = set()
        self._next = port_min

    def reserve(self, ports: list[int]) -> None:
        """Mark ports as taken (used when state is reloaded from disk)."""
        self._taken.update(p for p in ports if p)

    def release(self, ports: list[int]) -> None:
        self._taken.difference_update(ports)

    def allocate(self) -> int:
        for _ in range(self._max - self._min + 1):
            port = self._next
            self._next = self._min if port >= self._max else port + 1
            if port not in self._taken:
                self._taken.add(port)
                return port
        raise RuntimeError("Marathon's service port range is exhausted")


def absolute_id(app_id: str, *, base: str = "/") -> str:
    if app_id.startswith("/"):
        path = app_id
    else:
        path = base.rstrip("/") + "/" + app_id
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


# -- validation -----------------------------------------------------------------------------


def validate_app(definition: JSON) -> list[JSON]:
    """Marathon's validation of an app definition as submitted.

    Returns Marathon's 422 ``details``: ``[{"path": "/cpus", "errors": ["..."]}]``; empty when valid.
    """
    problems: dict[str, list[str]] = {}

    def fail(path: str, message: str) -> None:
        problems.setdefault(path, []).append(message)

    app_id = definition.get("id")
    if not isinstance(app_id, str) or not app_id.strip("/"):
        fail("/id", "error.path.missing")
    else:
        for segment in app_id.strip("/").split("/"):
            if segment not in (".", "..") and not ID_SEGMENT.match(segment):
                fail("/id", f"'{segment}' {ID_SEGMENT_MESSAGE}")
                break
    for field, minimum in (("cpus", 0), ("mem", 0), ("disk", 0), ("gpus", 0), ("instances", 0)):
        value = definition.get(field)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            fail(f"/{field}", "error.expected.jsnumber")
        elif value < minimum:
            fail(f"/{field}", f"got {value}, expected {minimum} or more")
    container = definition.get("container") or {}
    image = (container.get("docker") or {}).get("image")
    if not definition.get("cmd") and not definition.get("args") and not image:
        fail("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
    if definition.get("cmd") and definition.get("args"):
        fail("/", "AppDefinition must either contain a 'cmd' or a 'args', but not both.")
    strategy = definition.get("upgradeStrategy") or {}
    for field in ("minimumHealthCapacity", "maximumOverCapacity"):
        value = strategy.get(field)
        if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
            fail(f"/upgradeStrategy/{field}", f"got {value}, expected between 0.0 and 1.0")
    for i, constraint in enumerate(definition.get("constraints") or []):
        if not isinstance(constraint, list) or len(constraint) < 2:
            fail(f"/constraints({i})", "Each constraint must have either 2 or 3 fields")
        elif str(constraint[1]).upper() not in _CONSTRAINT_OPERATORS:
            fail(f"/constraints({i})", f"Constraint operator must be one of the following: "
                 f"[{', '.join(sorted(_CONSTRAINT_OPERATORS))}]")
    names: list[str] = []
    ports = _declared_ports(definition)
    for port in ports:
        if port.get("name"):
            names.append(port["name"])
    if len(names) != len(set(names)):
        fail("/portDefinitions" if definition.get("portDefinitions") else "/container/portMappings",
             "Port names must be unique.")
    port_count = len(ports) if ports else (0 if _is_container_network(definition) else 1)
    for i, check in enumerate(definition.get("healthChecks") or []):
        protocol = check.get("protocol", "HTTP")
        if protocol not in _HEALTH_PROTOCOL_DEFAULTS:
            fail(f"/healthChecks({i})/protocol", f"error.unknown.enum.literal: {protocol}")
            continue
        if protocol in ("COMMAND",) and not (check.get("command") or {}).get("value"):
            fail(f"/healthChecks({i})/command", "error.path.missing")
        if protocol != "COMMAND" and "port" not in check:
            index = check.get("portIndex", 0)
            if not isinstance(index, int) or index < 0 or index >= max(port_count, 0):
                fail(f"/healthChecks({i})",
                     "Health check port indices must address an element of the ports array "
                     "or container port mappings.")
    for i, dep in enumerate(definition.get("dependencies") or []):
        if not isinstance(dep, str) or not dep.strip("/"):
            fail(f"/dependencies({i})", "is not a valid path")
    for key, value in (definition.get("env") or {}).items():
        if isinstance(value, dict):
            secret = value.get("secret")
            if secret not in (definition.get("secrets") or {}):
                fail(f"/env/{key}", "references an undefined secret")
        elif not isinstance(value, str):
            fail(f"/env/{key}", "error.expected.jsstring")
    return [{"path": path, "errors": errors} for path, errors in problems.items()]


def _declared_ports(definition: JSON) -> list[JSON]:
    container = definition.get("container") or {}
    mappings = container.get("portMappings") or (container.get("docker") or {}).get(
        "portMappings"
    )
    if mappings:
        return list(mappings)
    if definition.get("portDefinitions") is not None:
        return list(definition["portDefinitions"])
    if definition.get("ports") is not None:
        return [{"port": p} for p in definition["ports"]]
    return []


def _is_container_network(definition: JSON) -> bool:
    networks = definition.get("networks") or []
    if networks:
        return any(n.get("mode", "container") != "host" for n in networks)
    docker = (definition.get("container") or {}).get("docker") or {}
    return docker.get("network") in ("BRIDGE", "USER") or bool(
        (definition.get("container") or {}).get("portMappings")
    )


# -- defaults -------------------------------------------------------------------------------


def fill_defaults(
    definition: JSON, *, allocator: ServicePortAllocator, previous: JSON | None = None
) -> JSON:
    """The app as Marathon stores and returns it: every default filled in, service ports assigned.

    ``previous`` is the currently stored app (for keeping already assigned service ports).
    Does not set runtime fields (``version``, ``versionInfo``, task counts, ``deployments``).
    Never mutates its arguments.
    """
    source = copy.deepcopy({k: v for k, v in definition.items() if k not in _RUNTIME_FIELDS})
    app: JSON = {"id": absolute_id(source.pop("id", "/"))}
    legacy_uris = source.pop("uris", None)
    legacy_ports = source.pop("ports", None)
    source.pop("ipAddress", None)
    app.update(source)
    for key, default in _APP_DEFAULTS.items():
        if app.get(key) is None:
            app[key] = copy.deepcopy(default)
    for key in ("cpus", "mem", "disk"):
        app[key] = float(app[key])
    if legacy_uris and not app["fetch"]:
        app["fetch"] = [{"uri": uri} for uri in legacy_uris]
    app["fetch"] = [
        {"executable": False, "extract": True, "cache": False, **item} for item in app["fetch"]
    ]
    app["upgradeStrategy"] = {**_UPGRADE_DEFAULTS, **(app.get("upgradeStrategy") or {})}
    app["unreachableStrategy"] = _unreachable(app.get("unreachableStrategy"))
    app["dependencies"] = [absolute_id(d, base=_parent(app["id"])) for d in app["dependencies"]]
    app["constraints"] = [[str(part) for part in c] for c in app["constraints"]]
    _fill_networking(app, legacy_ports=legacy_ports, allocator=allocator, previous=previous)
    app["healthChecks"] = [_health_check(c) for c in app["healthChecks"]]
    return app


def _parent(app_id: str) -> str:
    return app_id.rsplit("/", 1)[0] or "/"


def _unreachable(value: Any) -> Any:
    if value == "disabled":
        return "disabled"
    return {**_UNREACHABLE_DEFAULTS, **(value or {})}


def _health_check(check: JSON) -> JSON:
    protocol = check.get("protocol", "HTTP")
    out: JSON = {**_HEALTH_DEFAULTS, **_HEALTH_PROTOCOL_DEFAULTS.get(protocol, {}), **check}
    out["protocol"] = protocol
    if protocol != "COMMAND" and "port" not in out:
        out.setdefault("portIndex", 0)
    return out


def _fill_networking(
    app: JSON, *, legacy_ports: Any, allocator: ServicePortAllocator, previous: JSON | None
) -> None:
    container = app.get("container")
    docker = (container or {}).get("docker")
    legacy_network = None
    legacy_mappings = None
    if container is not None:
        container = dict(container)
        container.setdefault("type", "DOCKER")
        container.setdefault("volumes", [])
        if docker is not None:
            docker = dict(docker)
            legacy_network = docker.pop("network", None)
            legacy_mappings = docker.pop("portMappings", None)
            container["docker"] = {**_DOCKER_DEFAULTS, **docker}
        if legacy_mappings and not container.get("portMappings"):
            container["portMappings"] = legacy_mappings
        app["container"] = container
    networks = app.get("networks")
    if not networks:
        if legacy_network:
            networks = [{"mode": _LEGACY_NETWORK.get(legacy_network, "host")}]
        elif container is not None and container.get("portMappings"):
            networks = [{"mode": "container/bridge"}]
        else:
            networks = [{"mode": "host"}]
    app["networks"] = [dict(n) for n in networks]
    container_network = any(n.get("mode", "host") != "host" for n in app["networks"])
    previous_ports = _service_ports(previous) if previous else []
    if container_network:
        mappings = (container or {}).get("portMappings") or []
        bridge = any(n.get("mode") == "container/bridge" for n in app["networks"])
        filled = []
        for i, mapping in enumerate(mappings):
            m = {"containerPort": 0, "protocol": "tcp", "servicePort": 0, **mapping}
            if bridge:
                m.setdefault("hostPort", 0)
            m.setdefault("labels", {})
            m["servicePort"] = _service_port(m["servicePort"], i, previous_ports, allocator)
            filled.append(m)
        if app.get("container") is not None:
            app["container"]["portMappings"] = filled
        app["portDefinitions"] = []
    else:
        definitions = app.get("portDefinitions")
        if definitions is None:
            definitions = (
                [{"port": p} for p in legacy_ports]
                if legacy_ports is not None
                else [{"port": 0, "name": "default"}]
            )
        filled = []
        for i, definition in enumerate(definitions):
            d = {"port": 0, "protocol": "tcp", **definition}
            d.setdefault("labels", {})
            d["port"] = _service_port(d["port"], i, previous_ports, allocator)
            filled.append(d)
        app["portDefinitions"] = filled
        if app.get("container") is not None:
            app["container"].pop("portMappings", None)


def _service_port(declared: int, index: int, previous: list[int], alloc: ServicePortAllocator) -> int:
    if declared:
        alloc.reserve([declared])
        return declared
    if index < len(previous) and previous[index]:
        return previous[index]
    return alloc.allocate()


def _service_ports(app: JSON | None) -> list[int]:
    if not app:
        return []
    mappings = (app.get("container") or {}).get("portMappings")
    if mappings:
        return [int(m.get("servicePort") or 0) for m in mappings]
    return [int(d.get("port") or 0) for d in app.get("portDefinitions") or []]


def service_ports(app: JSON) -> list[int]:
    """The service ports an app holds (for releasing them when it is deleted)."""
    return _service_ports(app)


def port_names(app: JSON) -> list[str | None]:
    mappings = (app.get("container") or {}).get("portMappings")
    items = mappings if mappings else app.get("portDefinitions") or []
    return [item.get("name") for item in items]


# -- updates --------------------------------------------------------------------------------


def apply_partial_update(stored: JSON, update: JSON) -> JSON:
    """Marathon's PATCH / ``partialUpdate=true`` merge of ``update`` into ``stored``."""
    merged = copy.deepcopy({k: v for k, v in stored.items() if k not in _RUNTIME_FIELDS})
    for key, value in update.items():
        if key in _RUNTIME_FIELDS:
            continue
        merged[key] = copy.deepcopy(value)
    return merged


def change_kind(old: JSON, new: JSON) -> str:
    """``"none"``, ``"scale"`` (only ``instances`` differs) or ``"config"``.

    Both arguments are full apps as returned by :func:`fill_defaults`.
    """
    a = {k: v for k, v in old.items() if k not in _RUNTIME_FIELDS}
    b = {k: v for k, v in new.items() if k not in _RUNTIME_FIELDS}
    if a == b:
        return "none"
    a.pop("instances", None)
    b.pop("instances", None)
    return "scale" if a == b else "config"


# -- groups ---------------------------------------------------------------------------------


def flatten_group(group: JSON, *, base: str) -> list[JSON]:
    """The apps of a ``PUT /v2/groups/{id}`` body, ids made absolute, nested groups included.

    ``base`` is the absolute id of the group itself; nested group and app ids are relative to
    their enclosing group unless absolute.
    """
    apps = [
        {**app, "id": absolute_id(app.get("id", ""), base=base)} for app in group.get("apps") or []
    ]
    for sub in group.get("groups") or []:
        apps.extend(flatten_group(sub, base=absolute_id(sub.get("id", ""), base=base)))
    return apps


def validate_group(group: JSON) -> list[JSON]:
    details: list[JSON] = []
    for i, app in enumerate(flatten_group(group, base=absolute_id(group.get("id") or "/"))):
        for problem in validate_app(app):
            details.append({"path": f"/apps({i}){problem['path']}", "errors": problem["errors"]})
    return details
