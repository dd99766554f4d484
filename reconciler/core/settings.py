"""The config repo's own settings file, ``reconciler.yaml``, turned into RepoSettings.

Keys (all optional)::

    managedPrefixes: [/dirac-cert]          # apps we own; live apps elsewhere are untouched
    prune: false                            # delete live apps that left Git
    driftPolicy: {/dirac-cert: correct, /dirac-cert/web: report}
    ignore: {/dirac-cert/requests/executor: [/instances]}   # JSON pointers never diffed
    deadlines: {/dirac-cert/datamanagement: 180}            # seconds per rollout
    waves:                                  # release stages, in order (core/waves.py)
      - {name: portal, apps: [/dirac-cert/web/portal], soak: 300}
      - {name: rest, apps: ["*"]}
    windows: [{kind: deny, schedule: "0 18 * * 5", duration: 62h}]  # core/windows.py
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core import model
from reconciler.core import normalize as normalizing
from reconciler.core import windows as sync_windows


def from_data(data: Mapping[str, Any] | None) -> model.RepoSettings:
    """RepoSettings from a schema-valid ``reconciler.yaml`` (None: the file is empty/absent)."""
    data = data or {}
    prefixes = tuple(_prefix(p) for p in data.get("managedPrefixes") or ("/",))
    return model.RepoSettings(
        managed_prefixes=prefixes,
        prune=bool(data.get("prune", False)),
        drift_policies={_prefix(k): model.DriftPolicy(v)
                        for k, v in (data.get("driftPolicy") or {}).items()},
        ignore=tuple(model.IgnoreRule(app_prefix=_prefix(k), pointers=tuple(v))
                     for k, v in (data.get("ignore") or {}).items()),
        deadlines={_prefix(k): float(v) for k, v in (data.get("deadlines") or {}).items()},
        waves=tuple(model.ReleaseWave(name=w["name"], selectors=tuple(w["apps"]),
                                      soak=float(w.get("soak", 0)))
                    for w in data.get("waves") or ()),
        windows=sync_windows.from_data(data.get("windows")),
    )


def _prefix(prefix: str) -> str:
    return normalizing.absolute_id(prefix, base="/")
