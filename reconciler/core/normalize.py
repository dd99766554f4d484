"""Normalize one app so that fields Marathon fills in or owns never show as differences.

Both sides go through the same pipeline: ``desired`` (as written in Git, image resolved) and
``live`` (as ``GET /v2/apps`` returns it). The result is Marathon's canonical form: read-only
fields dropped, deprecated fields migrated (``uris`` -> ``fetch``, ``ports`` ->
``portDefinitions``, ``container.docker.network``/``ipAddress`` -> ``networks``,
``docker.portMappings`` -> ``container.portMappings``), every default filled in, and lists
that Marathon keeps as sets sorted. The defaults are our own reading of Marathon's RAML types
(``raml/v2/types/*.raml``) and ``AppNormalization.scala``; the dev cluster implements them
independently, so the two check each other.

The pipeline is a tuple of small normalizers (structlog's habit). Each one receives a dict
whose top level it may change, and must never mutate nested values it did not build: the
first step makes the only top-level copy, so ``normalize_app`` never touches its argument.
A nested value that is already canonical is kept as it is, not copied: a no-op diff of
10,000 apps should cost little more than parsing them (``bench/noop_diff.py``).

Choices only the server makes (a service port for a declared ``0``, a ``role`` left out) are
settled per pair in :mod:`reconciler.core.diff`, since one side alone cannot know them.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable
from typing import Any

from reconciler.core import model

JSON = model.JSON
Normalizer = Callable[[JSON], JSON]

SERVER_FIELDS = frozenset({
    "version", "versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy",
    "deployments", "tasks", "lastTaskFailure", "tasksStats", "readinessCheckResults",
    "taskStats", "counts",
})
"""Fields only Marathon writes (``AppInfo`` in app.raml): never part of a definition."""

APP_DEFAULTS: dict[str, Any] = {
    "instances": 1,
    "cpus": 1,
    "mem": 128,
    "disk": 0,
    "gpus": 0,
    "executor": "",
    "backoffSeconds": 1,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 300,
    "requirePorts": False,
    "killSelection": "YOUNGEST_FIRST",
    "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
    "labels": {},
    "env": {},
    "secrets": {},
    "constraints": [],
    "dependencies": [],
    "healthChecks": [],
    "readinessChecks": [],
    "fetch": [],
}
"""Top-level defaults from raml/v2/types/app.raml (``omitEmpty`` collections count as empty)."""
_APP_DEFAULT_KEYS = frozenset(APP_DEFAULTS)

UPGRADE_STRATEGY_DEFAULTS = {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}
DOCKER_DEFAULTS = {"forcePullImage": False, "privileged": False, "parameters": []}
PORT_MAPPING_DEFAULTS = {"containerPort": 0, "protocol": "tcp", "servicePort": 0, "labels": {}}
PORT_DEFINITION_DEFAULTS = {"port": 0, "protocol": "tcp", "labels": {}}
DEFAULT_PORT_DEFINITIONS = ({"port": 0, "protocol": "tcp", "name": "default", "labels": {}},)
"""Host networking without any port declared gets one (``Apps.DefaultPortDefinitions``)."""
DEFAULT_PORT_MAPPING = {"containerPort": 0, "protocol": "tcp", "servicePort": 0, "labels": {},
                        "name": "default"}
"""Non-host networking without port mappings gets one (``Apps.DefaultPortMappings``)."""

HEALTH_CHECK_DEFAULTS = {
    "gracePeriodSeconds": 300,
    "intervalSeconds": 60,
    "timeoutSeconds": 20,
    "maxConsecutiveFailures": 3,
    "delaySeconds": 15,
}
HEALTH_CHECK_PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Marathon 1.11 writes ipProtocol for every protocol (HealthCheckConversion).
    "HTTP": {"path": "/", "ignoreHttp1xx": False, "ipProtocol": "IPv4"},
    "HTTPS": {"path": "/", "ignoreHttp1xx": False, "ipProtocol": "IPv4"},
    "TCP": {"ipProtocol": "IPv4"},
    "COMMAND": {"ipProtocol": "IPv4"},
    "MESOS_HTTP": {"path": "/", "ipProtocol": "IPv4"},
    "MESOS_HTTPS": {"path": "/", "ipProtocol": "IPv4"},
    "MESOS_TCP": {"ipProtocol": "IPv4"},
}
_HEALTH_CHECK_ALL_DEFAULTS = {protocol: {**HEALTH_CHECK_DEFAULTS, **defaults}
                              for protocol, defaults in HEALTH_CHECK_PROTOCOL_DEFAULTS.items()}
"""Both kinds of defaults per protocol in one mapping (their keys do not overlap)."""
READINESS_CHECK_DEFAULTS = {
    "name": "readinessCheck",
    "protocol": "HTTP",
    "path": "/",
    "portName": "http-api",
    "intervalSeconds": 30,
    "timeoutSeconds": 10,
    "httpStatusCodesForReady": [200],
    "preserveLastResponse": False,
}
FETCH_DEFAULTS = {"extract": True, "executable": False, "cache": False}
CONTAINER_DEFAULTS = {"type": "DOCKER", "volumes": []}
NETWORK_DEFAULTS = {"mode": "container"}
_EXTRACTABLE = (".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip")
_DOCKER_NETWORK_MODES = {"BRIDGE": "container/bridge", "HOST": "host", "USER": "container",
                         "NONE": "container"}
_EMPTY_MEANS_ABSENT = ("args", "storeUrls")
"""No default in Marathon's model: an empty list says no more than leaving the field out."""
_SET_FIELDS = ("acceptedResourceRoles", "dependencies")
"""Lists Marathon stores as sets: their order carries no meaning."""


def _filled(value: JSON, defaults: JSON) -> JSON:
    """``value`` with every missing (or null) default filled in; the same dict if none was."""
    # Plain loops, not comprehensions: this runs several times per app and side, and on
    # Python 3.11 a comprehension costs a function call of its own.
    for key in defaults:
        if value.get(key) is None:
            break
    else:
        return value
    out = dict(value)
    for key, default in defaults.items():
        if out.get(key) is None:
            out[key] = default
    return out


def _kept(original: Any, normal: list[Any]) -> list[Any]:
    """``original`` if ``normal`` holds its very items (nothing changed), else ``normal``.

    Keeps already-canonical lists (every live one) instead of a fresh copy per app.
    """
    if (type(original) is list and len(original) == len(normal)
            and all(map(operator.is_, original, normal))):
        return original
    return normal


def _each_filled(values: Any, defaults: JSON) -> list[JSON]:
    """Every item of ``values`` filled with ``defaults``; the same list if none was missing."""
    filled = []
    changed = type(values) is not list
    for value in values:
        item = _filled(value, defaults)
        changed = changed or item is not value
        filled.append(item)
    return filled if changed else values


def network_modes(app: JSON) -> tuple[str, ...]:
    """The network modes an app runs in, after migrating deprecated fields (host by default)."""
    networks = app.get("networks")
    if networks:
        modes = []
        for network in networks:
            modes.append(str(network.get("mode") or "container"))
        return tuple(modes)
    container = app.get("container") or {}
    docker_network = (container.get("docker") or {}).get("network")
    if docker_network:
        return (_DOCKER_NETWORK_MODES.get(docker_network, "container"),)
    if app.get("ipAddress"):
        return ("container",)
    return ("host",)


def is_host_networking(app: JSON) -> bool:
    return _all_host(network_modes(app))


def _all_host(modes: tuple[str, ...]) -> bool:
    return modes.count("host") == len(modes)


# --- the normalizers, in pipeline order ---------------------------------------------------


def drop_server_fields(app: JSON) -> JSON:
    """The only top-level copy: without read-only fields and without nulls (null = absent)."""
    return {k: v for k, v in app.items() if v is not None and k not in SERVER_FIELDS}


def absolute_ids(app: JSON) -> JSON:
    """``id`` absolute without trailing slash; dependencies resolved against the app's group."""
    app_id = app.get("id")
    if isinstance(app_id, str):
        app["id"] = absolute_id(app_id, base="/")
    dependencies = app.get("dependencies")
    if dependencies:
        group = app.get("id", "/").rsplit("/", 1)[0] or "/"
        app["dependencies"] = [absolute_id(d, base=group) for d in dependencies]
    return app


def migrate_uris(app: JSON) -> JSON:
    """Deprecated ``uris`` become ``fetch`` artifacts, as Marathon migrates them."""
    uris = app.pop("uris", None)
    if uris and not app.get("fetch"):
        app["fetch"] = [{"uri": u, "extract": u.endswith(_EXTRACTABLE)} for u in uris]
    return app


def migrate_networks(app: JSON) -> JSON:
    """``container.docker.network`` and ``ipAddress`` become ``networks``; modes filled in."""
    networks = app.get("networks")
    if networks:
        app["networks"] = _each_filled(networks, NETWORK_DEFAULTS)
    else:
        modes = network_modes(app)
        network: JSON = {"mode": modes[0]}
        name = (app.get("ipAddress") or {}).get("networkName")
        if name and modes[0] == "container":
            network["name"] = name
        app["networks"] = [network]
    app.pop("ipAddress", None)
    container = app.get("container")
    if container and (container.get("docker") or {}).get("network") is not None:
        docker = {k: v for k, v in container["docker"].items() if k != "network"}
        app["container"] = {**container, "docker": docker}
    return app


def fill_app_defaults(app: JSON) -> JSON:
    for key in _APP_DEFAULT_KEYS.difference(app):
        app[key] = APP_DEFAULTS[key]
    for key in _EMPTY_MEANS_ABSENT:
        if key in app and not app[key]:
            del app[key]
    app["upgradeStrategy"] = _filled(app.get("upgradeStrategy") or {}, UPGRADE_STRATEGY_DEFAULTS)
    return app


def normalize_container(app: JSON) -> JSON:
    """Docker defaults, port mappings moved out of ``docker``, defaults per port mapping."""
    modes = network_modes(app)
    host = _all_host(modes)
    original = app.get("container")
    if original is None:
        if host:
            return app
        original = {"type": "MESOS"}
    changes: JSON = {}
    docker = original.get("docker")
    mappings = original.get("portMappings")
    if docker is not None:
        legacy = docker.get("portMappings")
        normal_docker = docker
        if "portMappings" in docker:
            normal_docker = {k: v for k, v in docker.items() if k != "portMappings"}
        normal_docker = _filled(normal_docker, DOCKER_DEFAULTS)
        if normal_docker is not docker:
            changes["docker"] = normal_docker
        if legacy and not mappings:
            mappings = legacy
    if not host:
        bridge = "container/bridge" in modes
        if mappings is None:
            mappings = [DEFAULT_PORT_MAPPING]
        normal = _kept(mappings, [_port_mapping(m, bridge=bridge) for m in mappings])
        if normal is not original.get("portMappings"):
            changes["portMappings"] = normal
    container = _filled(original, CONTAINER_DEFAULTS)
    if changes or (host and "portMappings" in container):
        if container is original:
            container = dict(original)  # the one copy of this container
        container.update(changes)
        if host:
            container.pop("portMappings", None)
    app["container"] = container
    return app


def _port_mapping(mapping: JSON, *, bridge: bool) -> JSON:
    mapping = _filled(mapping, PORT_MAPPING_DEFAULTS)
    if bridge and mapping.get("hostPort") is None:
        # Marathon's backwards compatibility: in bridge mode a missing host port means 0.
        mapping = {**mapping, "hostPort": 0}
    if "networkNames" in mapping and not mapping["networkNames"]:
        mapping = {k: v for k, v in mapping.items() if k != "networkNames"}
    return mapping


def normalize_port_definitions(app: JSON) -> JSON:
    """Host networking: ``ports`` migrated, one default port if none; others: no definitions."""
    ports = app.pop("ports", None)
    if not is_host_networking(app):
        app.pop("portDefinitions", None)
        app["requirePorts"] = False
        return app
    definitions = app.get("portDefinitions")
    if definitions is None:
        definitions = [{"port": p} for p in ports] if ports is not None else (
            DEFAULT_PORT_DEFINITIONS)
    app["portDefinitions"] = _each_filled(definitions, PORT_DEFINITION_DEFAULTS)
    return app


_NO_DELAY_PROTOCOLS = frozenset({"HTTP", "HTTPS", "TCP"})


def normalize_health_checks(app: JSON) -> JSON:
    checks = app["healthChecks"]
    if not checks:
        return app
    filled = []
    for check in checks:
        protocol = check.get("protocol") or "HTTP"
        out = _filled(check, _HEALTH_CHECK_ALL_DEFAULTS.get(protocol, HEALTH_CHECK_DEFAULTS))
        needs_port = (protocol != "COMMAND" and out.get("port") is None
                      and out.get("portIndex") is None)
        # Marathon's own HTTP and TCP checks have no delay: it always writes the default.
        fixed_delay = (protocol in _NO_DELAY_PROTOCOLS
                       and out.get("delaySeconds") != HEALTH_CHECK_DEFAULTS["delaySeconds"])
        if needs_port or fixed_delay or out.get("protocol") != protocol:
            if out is check:
                out = dict(check)
            out["protocol"] = protocol
            if needs_port:
                out["portIndex"] = 0
            if fixed_delay:
                out["delaySeconds"] = HEALTH_CHECK_DEFAULTS["delaySeconds"]
        filled.append(out)
    app["healthChecks"] = _kept(checks, _sorted_objects(filled))
    return app


def normalize_readiness_checks(app: JSON) -> JSON:
    if app["readinessChecks"]:
        app["readinessChecks"] = _each_filled(app["readinessChecks"], READINESS_CHECK_DEFAULTS)
    return app


def normalize_fetch(app: JSON) -> JSON:
    if app["fetch"]:
        app["fetch"] = _each_filled(app["fetch"], FETCH_DEFAULTS)
    return app


def normalize_sets(app: JSON) -> JSON:
    """Constraints, roles and dependencies are sets in Marathon: sorted, empty value dropped."""
    constraints = app["constraints"]
    if constraints:
        normal = []
        for constraint in constraints:
            if len(constraint) == 3 and constraint[2] in ("", None):
                constraint = list(constraint[:2])
            elif type(constraint) is not list:
                constraint = list(constraint)
            normal.append(constraint)
        normal.sort()
        app["constraints"] = _kept(constraints, normal)
    for key in _SET_FIELDS:
        values = app.get(key)
        if values and len(values) > 1:
            app[key] = _kept(values, sorted(values))
    return app


PIPELINE: tuple[Normalizer, ...] = (
    drop_server_fields,
    absolute_ids,
    migrate_uris,
    migrate_networks,
    fill_app_defaults,
    normalize_container,
    normalize_port_definitions,
    normalize_health_checks,
    normalize_readiness_checks,
    normalize_fetch,
    normalize_sets,
)


def normalize_app(app: JSON, *, ignore: tuple[str, ...] = ()) -> JSON:
    """Marathon's canonical form of ``app``, without the fields at the ``ignore`` pointers."""
    for step in PIPELINE:
        app = step(app)
    if ignore:
        app = without_pointers(app, ignore)
    return app


def without_pointers(app: JSON, pointers: Iterable[str]) -> JSON:
    """``app`` without the values at ``pointers`` (JSON pointers); absent ones are fine."""
    for pointer in pointers:
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
        app = _without(app, tokens)
    return app


def _without(value: Any, tokens: list[str]) -> Any:
    if not tokens:
        return value
    head, rest = tokens[0], tokens[1:]
    if isinstance(value, dict):
        if head not in value:
            return value
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        return {**value, head: _without(value[head], rest)}
    if isinstance(value, list) and head.isdigit() and int(head) < len(value):
        index = int(head)
        if not rest:
            return value[:index] + value[index + 1:]
        return [*value[:index], _without(value[index], rest), *value[index + 1:]]
    return value


def absolute_id(app_id: str, *, base: str) -> str:
    """``app_id`` made absolute against the group ``base``, with ``.`` and ``..`` resolved."""
    if (app_id.startswith("/") and not app_id.endswith("/") and "//" not in app_id
            and "/." not in app_id):
        return app_id  # already canonical, as every live id is: skip the split and join
    parts = [] if app_id.startswith("/") else [p for p in base.split("/") if p]
    for part in app_id.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _sorted_objects(values: list[JSON]) -> list[JSON]:
    if len(values) < 2:
        return values
    return sorted(values, key=lambda v: json.dumps(v, sort_keys=True))
