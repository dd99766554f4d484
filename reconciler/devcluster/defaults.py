"""An app as Marathon stores and returns it: the canonical 1.5+ form with every default.

The defaults follow Marathon's RAML types (``app.raml``, ``healthCheck.raml``,
``appContainer.raml``, ``network.raml``, ``readinessCheck.raml``, ``unreachableStrategy.raml``)
in the canonical form Marathon 1.5+ answers with: the deprecated ``ports``, ``uris``,
``ipAddress``, ``container.docker.network`` and ``container.docker.portMappings`` are migrated to
``portDefinitions``, ``fetch``, ``networks`` and ``container.portMappings`` and never written back.
Pure functions over plain JSON dicts, no I/O.
"""

from __future__ import annotations

from typing import Any

from reconciler.devcluster import ids, plain, serviceports

JSON = dict[str, Any]

RUNTIME_FIELDS = frozenset(
    {
        "version", "versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy",
        "tasksUnhealthy", "deployments", "tasks", "lastTaskFailure", "readinessCheckResults",
        "tasksStats", "taskStats", "counts",
    }
)
"""``AppInfo`` fields only Marathon writes; never part of a definition or of a change."""


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
HEALTH_PROTOCOL_DEFAULTS: dict[str, JSON] = {
    "HTTP": {"ignoreHttp1xx": False},
    "HTTPS": {"ignoreHttp1xx": False},
}
"""``HealthCheckConversion.appHealthCheckWrites``: ``ipProtocol`` is written for every protocol
(``IPv4`` unless a Mesos check says otherwise), ``ignoreHttp1xx`` only for Marathon's own HTTP
checks; no ``path`` is invented."""
HEALTH_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
"""RAML ``AppHealthCheckProtocol``."""
_FIXED_DELAY_PROTOCOLS = frozenset({"HTTP", "HTTPS", "TCP"})
"""Marathon's own checks have no delay: ``create`` writes ``HealthCheck.DefaultDelay`` (15)."""


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
LEGACY_NETWORK_MODES = {"BRIDGE": "container/bridge", "HOST": "host", "USER": "container",
                         "NONE": "container"}
NETWORK_MODES = frozenset({"container", "container/bridge", "host"})


def has_image(container: Any) -> bool:
    container = plain.as_dict(container)
    kind = container.get("type", "DOCKER")
    docker, appc = container.get("docker"), container.get("appc")
    return (docker is not None and appc is None and kind in ("DOCKER", "MESOS")) or (
        docker is None and appc is not None and kind == "MESOS"
    )


def canonical(definition: JSON) -> JSON:
    """The definition in Marathon's canonical 1.5+ form with every default, ports not yet assigned.

    This is what ``AppNormalization`` and the RAML reader make of a body before validation.
    """
    source = {
        k: v for k, v in definition.items() if k not in RUNTIME_FIELDS and v is not None
    }
    app: JSON = {"id": ids.absolute_id(str(source.get("id", "/")))}
    for key, default in _APP_DEFAULTS:
        value = source.get(key)
        app[key] = plain.deep_copy(value) if value is not None else plain.deep_copy(default)
    if not app["fetch"] and source.get("uris"):
        app["fetch"] = [{"uri": uri} for uri in source["uris"]]
    app["fetch"] = [{"uri": f.get("uri"), **_FETCH_DEFAULTS, **f} for f in app["fetch"]]
    app["constraints"] = [[str(part) for part in c] for c in app["constraints"]]
    app["dependencies"] = [ids.absolute_id(d, base=ids.parent_id(app["id"]))
                           for d in app["dependencies"]]
    volumes = plain.as_list(plain.as_dict(source.get("container")).get("volumes"))
    resident = any("persistent" in plain.as_dict(v) for v in volumes)
    app["upgradeStrategy"] = {
        **(_RESIDENT_UPGRADE_DEFAULTS if resident else _UPGRADE_DEFAULTS),
        **plain.as_dict(source.get("upgradeStrategy")),
    }
    unreachable = source.get("unreachableStrategy")
    app["unreachableStrategy"] = (
        "disabled" if unreachable == "disabled"
        else {**_UNREACHABLE_DEFAULTS, **plain.as_dict(unreachable)}
    )
    for key in ("tty", "taskKillGracePeriodSeconds", "residency", "resourceLimits",
                "executorResources", "check"):
        if key in source:
            app[key] = plain.deep_copy(source[key])
    _canonical_networking(source, app)
    has_ports = bool(app.get("portDefinitions")
                     or plain.as_dict(app["container"]).get("portMappings"))
    app["healthChecks"] = [_health_check(c, has_ports=has_ports) for c in app["healthChecks"]]
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
        app["networks"] = [{"mode": LEGACY_NETWORK_MODES.get(legacy_mode, "host")}]
    elif source.get("ipAddress") is not None:
        ip = plain.as_dict(source["ipAddress"])
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
            {"port": 0, "protocol": "tcp", **plain.deep_copy(d),
             "labels": plain.deep_copy(d.get("labels") or {})}
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
        m = {"containerPort": 0, "protocol": "tcp", "servicePort": 0, **plain.deep_copy(mapping)}
        if bridge and m.get("hostPort") is None:
            m["hostPort"] = 0
        m["labels"] = m.get("labels") or {}
        filled.append(m)
    container["portMappings"] = filled


def _health_check(check: JSON, *, has_ports: bool) -> JSON:
    """A health check as Marathon writes it back (``HealthCheckConversion``); a non-COMMAND check
    without port gets ``portIndex`` 0 when the app declares ports
    (``AppNormalization.normalizeHealthChecks``, applied on create only for apps with ports)."""
    protocol = check.get("protocol") or "HTTP"
    out: JSON = {**_HEALTH_DEFAULTS, "ipProtocol": "IPv4",
                 **HEALTH_PROTOCOL_DEFAULTS.get(protocol, {})}
    out.update((k, plain.deep_copy(v)) for k, v in check.items() if v is not None)
    out["protocol"] = protocol
    if protocol in _FIXED_DELAY_PROTOCOLS:
        out["delaySeconds"] = _HEALTH_DEFAULTS["delaySeconds"]
    if protocol not in _HTTP_PROTOCOLS:
        out.pop("ignoreHttp1xx", None)
    if protocol == "COMMAND":
        out.pop("portIndex", None)
        out.pop("port", None)
    elif has_ports and out.get("port") is None and out.get("portIndex") is None:
        out["portIndex"] = 0
    return out


_HTTP_PROTOCOLS = frozenset({"HTTP", "HTTPS"})


def fill_defaults(
    definition: JSON, *, allocator: serviceports.ServicePortAllocator, previous: JSON | None = None
) -> JSON:
    """The app as Marathon stores and returns it: every default filled in, service ports assigned.

    ``previous`` is the currently stored app (for keeping already assigned service ports).
    Does not set runtime fields (``version``, ``versionInfo``, task counts, ``deployments``).
    Never mutates its arguments. Service ports ``previous`` held and the new app does not are
    given back to ``allocator``.
    """
    app = canonical(definition)
    kept = serviceports.service_ports(previous) if previous else []
    items = serviceports.port_items(app)
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
