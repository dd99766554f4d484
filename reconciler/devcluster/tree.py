"""The group tree as Marathon keeps it: groups are objects, and every root change is a version.

Marathon stores a root group (``RootGroup``): a group outlives its last app (``removeApp``
leaves it, empty), is created with the apps under it (``putGroup``) or on its own, and goes
only when deleted or left out of its parent's ``groups``. Every root change stamps the root
and every group with the change's version (``GroupVersioningUtil``, ``RootGroup.updateVersion``)
and stores a root version (``storeRootVersion``), which ``/v2/groups/{id}/versions`` lists.
Pure data: apps themselves live in the cluster's ``apps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

MAX_VERSIONS = 50
"""Root versions kept (Marathon's ``zk_max_versions`` default)."""


def ancestors(path_id: str) -> list[str]:
    """Every group above ``path_id``, root excluded: ``/a/b/c`` gives ``/a``, ``/a/b``."""
    parts = path_id.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def within(path_id: str, group_id: str) -> bool:
    """``path_id`` is ``group_id`` or below it (everything is below the root)."""
    return group_id == "/" or path_id == group_id or path_id.startswith(group_id + "/")


@dataclass(frozen=True)
class RootVersion:
    version: str
    groups: frozenset[str]
    apps: dict[str, JSON]
    """Each app's stored definition in this root version."""


@dataclass
class GroupTree:
    groups: set[str] = field(default_factory=set)
    """Every group id but the root's."""
    version: str = ""
    """The root's (and so every group's) version: the last change's timestamp."""
    history: list[RootVersion] = field(default_factory=list)

    def exists(self, group_id: str) -> bool:
        return group_id == "/" or group_id in self.groups

    def add(self, path_ids: list[str], *, groups: bool = False) -> None:
        """Create the groups above each id (and the ids themselves, for ``groups``)."""
        for path_id in path_ids:
            self.groups.update(ancestors(path_id))
            if groups and path_id != "/":
                self.groups.add(path_id)

    def remove(self, group_id: str) -> None:
        """Remove ``group_id`` and every group below it (the root itself only empties)."""
        self.groups = {g for g in self.groups if not within(g, group_id)}

    def children(self, group_id: str) -> list[str]:
        depth = 0 if group_id == "/" else group_id.count("/")
        return sorted(g for g in self.groups if g.count("/") == depth + 1 and within(g, group_id))

    def stamp(self, version: str, apps: dict[str, JSON]) -> None:
        """A root change: every group takes ``version``; the root version is kept."""
        self.version = version
        self.keep(version, apps)

    def keep(self, version: str, apps: dict[str, JSON]) -> None:
        """Store a root version without making it the current root (a refused write's)."""
        self.history.append(RootVersion(version, frozenset(self.groups), dict(apps)))
        del self.history[:-MAX_VERSIONS]

    def versions_of(self, group_id: str) -> list[str]:
        """Root versions in which ``group_id`` exists, newest first (``GroupManager.versions``)."""
        return [v.version for v in reversed(self.history)
                if group_id == "/" or group_id in v.groups]

    def at(self, group_id: str, version: str) -> RootVersion | None:
        for root in self.history:
            if root.version == version and (group_id == "/" or group_id in root.groups):
                return root
        return None

    def to_json(self) -> JSON:
        return {"groups": sorted(self.groups), "version": self.version}

    @classmethod
    def from_json(cls, data: JSON) -> GroupTree:
        return cls(groups=set(data.get("groups", [])), version=data.get("version", ""))
