"""``PUT /v2/groups`` bodies: their apps with absolute ids, their group ids, their 422 details."""

from __future__ import annotations

from typing import Any

from reconciler.devcluster import ids, plain, shapes, validation

JSON = dict[str, Any]

def flatten_group(group: JSON, *, base: str) -> list[JSON]:
    """The apps of a ``PUT /v2/groups/{id}`` body, ids made absolute, nested groups included.

    ``base`` is the group id of the URL. The body's own ``id``, when present, is resolved
    against it (``PathId.canonicalPath``); app ids and sub-group ids are resolved against the
    group that holds them.
    """
    group_id = _group_id(group, base=base)
    apps = []
    for app in plain.as_list(group.get("apps")):
        raw_id = app.get("id")
        app_id = ids.absolute_id(raw_id, base=group_id) if isinstance(raw_id, str) else raw_id
        apps.append({**app, "id": app_id})
    for sub in plain.as_list(group.get("groups")):
        apps.extend(flatten_group(sub, base=group_id))
    return apps


def _group_id(group: JSON, *, base: str) -> str:
    raw = group.get("id")
    base = ids.absolute_id(base)
    return ids.absolute_id(raw, base=base) if isinstance(raw, str) and raw else base


def group_ids(group: JSON, *, base: str) -> list[str]:
    """Every group id a ``PUT /v2/groups`` body declares, itself first, ids made absolute."""
    group_id = _group_id(group, base=base)
    ids = [group_id]
    for sub in plain.as_list(group.get("groups")):
        ids.extend(group_ids(sub, base=group_id))
    return ids


def left_out(
    group: JSON, *, base: str, apps: list[str], groups: list[str],
) -> tuple[set[str], set[str]]:
    """The apps and groups a group update removes (``UpdateGroupStructureOp.execute``).

    Where a group of the body lists ``apps``, its direct apps not listed go; where it lists
    ``groups``, its subgroups not listed go with everything below them. A key left out keeps
    what is there. ``apps`` and ``groups`` are the ids that exist now.
    """
    group_id = _group_id(group, base=base)
    gone_apps: set[str] = set()
    gone_groups: set[str] = set()
    if "apps" in group:
        listed = {a["id"] for a in flatten_group({"apps": group["apps"]}, base=group_id)}
        gone_apps |= {a for a in apps if ids.parent_id(a) == group_id and a not in listed}
    if "groups" in group:
        listed = {_group_id(plain.as_dict(sub), base=group_id)
                  for sub in plain.as_list(group["groups"])}
        for child in groups:
            if ids.parent_id(child) == group_id and child not in listed:
                gone_groups.add(child)
                gone_apps |= {a for a in apps if a.startswith(child + "/")}
    for sub in plain.as_list(group.get("groups")):
        more_apps, more_groups = left_out(plain.as_dict(sub), base=group_id, apps=apps,
                                          groups=groups)
        gone_apps |= more_apps
        gone_groups |= more_groups
    return gone_apps, gone_groups


def validate_group(group: JSON, *, base: str = "/") -> list[JSON]:
    """Marathon's 422 ``details`` for a group body; each app's problems under ``/apps(i)``.

    Apps whose absolute id is not a direct child of their group are refused the way
    ``PathId.validPathWithBase`` does.
    """
    problems = shapes.Problems()
    _validate_group(group, base=base, prefix="", problems=problems)
    return problems.details()


def _validate_group(group: Any, *, base: str, prefix: str, problems: shapes.Problems) -> None:
    if not isinstance(group, dict):
        problems.add(prefix or "/", "error.expected.jsobject")
        return
    raw_id = group.get("id")
    if raw_id is not None and not isinstance(raw_id, str):
        problems.add(f"{prefix}/id", "error.expected.jsstring")
        return
    if raw_id:
        for message in ids.id_problems(raw_id):
            problems.add(f"{prefix}/id", message)
    group_id = _group_id(group, base=base)
    for key in ("apps", "groups"):
        if group.get(key) is not None and not isinstance(group[key], list):
            problems.add(f"{prefix}/{key}", "error.expected.jsarray")
            return
    for i, app in enumerate(plain.as_list(group.get("apps"))):
        where = f"{prefix}/apps({i})"
        if not isinstance(app, dict):
            problems.add(where, "error.expected.jsobject")
            continue
        raw_app_id = app.get("id")
        app_id = ids.absolute_id(raw_app_id, base=group_id) if isinstance(raw_app_id, str) else None
        for detail in validation.validate_app({**app, "id": app_id} if app_id else app):
            for message in detail["errors"]:
                problems.add(where + (detail["path"] if detail["path"] != "/" else ""), message)
        if app_id is not None and ids.parent_id(app_id) != group_id:
            problems.add(f"{where}/id", f"Identifier is not child of '{group_id}'")
    for i, sub in enumerate(plain.as_list(group.get("groups"))):
        where = f"{prefix}/groups({i})"
        if isinstance(sub, dict) and not sub.get("id"):
            problems.add(f"{where}/id", "error.path.missing")
            continue
        _validate_group(sub, base=group_id, prefix=where, problems=problems)
        sub_id = _group_id(plain.as_dict(sub), base=group_id)
        if isinstance(sub, dict) and ids.parent_id(sub_id) != group_id:
            problems.add(f"{where}/id", f"Identifier is not child of '{group_id}'")
