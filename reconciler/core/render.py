"""Show diffs to people (terraform-plan-like text) and to programs (JSON), already masked.

Used by ``reconciler diff`` and by the web dashboard; works on :class:`model.AppDiff` only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.core import model

JSON = model.JSON

_SYMBOLS = {
    model.Action.CREATE: "+",
    model.Action.UPDATE: "~",
    model.Action.SCALE: "~",
    model.Action.DELETE: "-",
    model.Action.NOOP: " ",
}
_ORDER = (model.Action.CREATE, model.Action.UPDATE, model.Action.SCALE, model.Action.DELETE,
          model.Action.NOOP)
_MAX_VALUE = 120


def counts(diffs: Sequence[model.AppDiff]) -> dict[str, int]:
    """How many apps per action, every action present (zero included)."""
    result = {str(action): 0 for action in _ORDER}
    for diff in diffs:
        result[str(diff.action)] += 1
    return result


def has_changes(diffs: Sequence[model.AppDiff]) -> bool:
    return any(d.action is not model.Action.NOOP for d in diffs)


def summary_line(diffs: Sequence[model.AppDiff]) -> str:
    c = counts(diffs)
    return (f"{c['create']} to create, {c['update']} to update, {c['scale']} to scale, "
            f"{c['delete']} to delete, {c['no-op']} unchanged")


def render_text(diffs: Sequence[model.AppDiff], *, full: bool = False) -> str:
    """A plan a human reads: counts, then each changed app and its fields, old -> new.

    ``full``: values are never shortened, and unchanged apps are listed too.
    """
    limit = None if full else _MAX_VALUE
    lines = [f"Plan: {summary_line(diffs)}."]
    for diff in diffs:
        if diff.action is model.Action.NOOP:
            if full:
                lines.append("")
                lines.append(f"  {diff.app_id} (unchanged)")
            continue
        lines.append("")
        lines.append(f"{_SYMBOLS[diff.action]} {diff.app_id} ({diff.action})")
        if diff.action is model.Action.DELETE:
            lines.append("    live but not in Git: deleted only when the repo settings prune")
            continue
        for change in diff.changes:
            if diff.action is model.Action.CREATE:
                lines.append(f"    {change.path}: {_value(change.new, limit)}")
            else:
                lines.append(f"    {change.path}: {_value(change.old, limit)} -> "
                             f"{_value(change.new, limit)}")
    if not has_changes(diffs):
        lines.append("No changes: live Marathon matches the desired state.")
    return "\n".join(lines) + "\n"


def render_json(diffs: Sequence[model.AppDiff]) -> JSON:
    """The same plan for programs: counts and, per app, its action, patch and changes."""
    return {
        "counts": counts(diffs),
        "changed": has_changes(diffs),
        "apps": [
            {
                "id": d.app_id,
                "action": str(d.action),
                "patch": [dict(op) for op in d.patch],
                "changes": [{"path": c.path, "old": c.old, "new": c.new} for c in d.changes],
            }
            for d in diffs
        ],
    }


def _value(value: Any, limit: int | None = _MAX_VALUE) -> str:
    if value is None:
        return "(absent)"
    text = json.dumps(value, sort_keys=True)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
