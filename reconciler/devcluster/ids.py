"""Marathon's app and group ids (``PathId``): absolute form, parent, and what makes one invalid."""

from __future__ import annotations

import re

ID_SEGMENT_PATTERN = (
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$"
)
"""``PathId.ID_PATH_SEGMENT_PATTERN``; Java's ``matches()`` needs the whole segment to match."""
ID_SEGMENT = re.compile(ID_SEGMENT_PATTERN)
ID_SEGMENT_MESSAGE = f"must fully match regular expression '{ID_SEGMENT_PATTERN}'"
RESERVED_ID_KEYWORDS = ("restart", "tasks", "versions", ".", "..")
"""``PathId.reservedKeywords`` in 1.11."""
RAML_PATH_ID = re.compile(
    r"^(\/?((\.\.)|(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*"
    r"([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9]))?($|\/))+$"
)
"""RAML ``strings.PathId``: the generated reader answers ``error.pattern`` before any rule."""


def absolute_id(app_id: str, *, base: str = "/") -> str:
    """``PathId.canonicalPath``: a relative id resolved against ``base``, ``.``/``..`` applied."""
    path = app_id if app_id.startswith("/") else base.rstrip("/") + "/" + app_id
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


def parent_id(app_id: str) -> str:
    return app_id.rsplit("/", 1)[0] or "/"


def id_problems(raw: str) -> list[str]:
    """``PathId.pathIdValidator`` messages for one id (relative ids are allowed)."""
    segments = [s for s in raw.split("/") if s]
    problems = []
    if not all(ID_SEGMENT.fullmatch(s) for s in segments):
        problems.append(ID_SEGMENT_MESSAGE)
    if segments and segments[-1] in RESERVED_ID_KEYWORDS:
        problems.append(
            "must not end with any of the following reserved keywords: "
            + ", ".join(RESERVED_ID_KEYWORDS)
        )
    return problems
