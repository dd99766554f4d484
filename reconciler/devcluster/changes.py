"""Changes to a stored app: Marathon's partial-update merge and the kind of a change."""

from __future__ import annotations

from typing import Any, Literal

from reconciler.devcluster import defaults, plain

JSON = dict[str, Any]

ChangeKind = Literal["none", "scale", "config", "metadata"]


def apply_partial_update(stored: JSON, update: JSON) -> JSON:
    """Marathon's PATCH / ``partialUpdate=true`` merge of ``update`` into ``stored``.

    Top-level fields present (and not null) in ``update`` replace the stored ones whole;
    absent ones keep the stored value; ``id`` stays. Deprecated fields in ``update`` are first
    turned into the canonical ones they stand for, so ``{"ports": [0]}`` replaces
    ``portDefinitions`` and a ``container.docker.network`` replaces ``networks``.
    """
    merged = {k: plain.deep_copy(v) for k, v in stored.items() if k not in defaults.RUNTIME_FIELDS}
    changes = {
        k: v for k, v in update.items()
        if v is not None and k not in defaults.RUNTIME_FIELDS and k != "id"
    }
    if "uris" in changes:
        uris = changes.pop("uris")
        changes.setdefault("fetch", [{"uri": u} for u in uris])
    if "ports" in changes:
        ports = changes.pop("ports")
        changes.setdefault("portDefinitions", [{"port": p} for p in ports])
    if "ipAddress" in changes:
        ip = plain.as_dict(changes.pop("ipAddress"))
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
            mode = defaults.LEGACY_NETWORK_MODES.get(mode, "host")
            changes.setdefault("networks", [{"mode": mode}])
        mappings = docker.pop("portMappings", None)
        if mappings is not None and container.get("portMappings") is None:
            container["portMappings"] = mappings
        changes["container"] = container
    for key, value in changes.items():
        merged[key] = plain.deep_copy(value)
    if "networks" in changes and "portDefinitions" not in changes:
        host = all(plain.as_dict(n).get("mode", "container") == "host" for n in changes["networks"])
        if not host:
            # The stored default port definition belonged to host networking.
            merged.pop("portDefinitions", None)
    return merged


NOT_UPGRADE_FIELDS = frozenset({"executorResources", "instances"})
"""Fields of ``AppDefinition`` that ``isUpgrade`` leaves out: changing them restarts no task.
(1.11's ``AppDefinition`` and RAML ``App`` have no ``description``: it is not even stored.)"""


def definition_of(stored: JSON) -> JSON:
    """A stored app without its runtime fields: what a client would send to get it back."""
    return {k: plain.deep_copy(v) for k, v in stored.items() if k not in defaults.RUNTIME_FIELDS}


def change_kind(old: JSON, new: JSON) -> ChangeKind:
    """``"none"``, ``"scale"``, ``"config"`` or ``"metadata"``, as Marathon tells them apart.

    Both arguments are full apps as returned by :func:`defaults.fill_defaults`; runtime fields are
    ignored. ``"config"``: a field ``AppDefinition.isUpgrade`` compares differs (tasks are
    restarted, every version stamp moves); ``"scale"``: else ``instances`` differs
    (``isOnlyScaleChange``: ``version`` and ``lastScalingAt`` move); ``"metadata"``: only
    ``executorResources`` differs, which ``GroupVersioningUtil.updateVersionInfoForChangedApps``
    and ``DeploymentPlan.dependencyOrderedSteps`` ignore (no action, no new version).
    """
    differs = {k for k in old.keys() | new.keys() if k not in defaults.RUNTIME_FIELDS
               and old.get(k) != new.get(k)}
    if not differs:
        return "none"
    if differs - NOT_UPGRADE_FIELDS:
        return "config"
    return "scale" if "instances" in differs else "metadata"
