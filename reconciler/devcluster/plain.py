"""Plain JSON helpers for the dev cluster's app rules: deep copies and tolerant reads."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

def deep_copy(value: Any) -> Any:
    """A deep copy of JSON data (several times faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}
