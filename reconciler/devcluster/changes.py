"""Changes to a stored app: Marathon's partial-update merge and the kind of a change."""

from __future__ import annotations

from typing import Any, Literal

from reconciler.devcluster import defaults, plain

JSON = dict[str, Any]

ChangeKind = Literal["none", "scale", "config"]


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


def change_kind(old: JSON, new: JSON) -> ChangeKind:
    """``"none"``, ``"scale"`` (only ``instances`` differs) or ``"config"``.

    Both arguments are full apps as returned by :func:`defaults.fill_defaults`; runtime fields are
    ignored. Marathon sets ``lastScalingAt`` on a scale and both timestamps on a config change,
    and restarts tasks only on a config change.
    """
    differs = [k for k in old.keys() | new.keys() if k not in defaults.RUNTIME_FIELDS
               and old.get(k) != new.get(k)]
    if not differs:
        return "none"
    return "scale" if differs == ["instances"] else "config"
