"""Equal JSON values held once: many apps, few distinct parts.

Apps repeat their env, labels, constraints, health checks and upgrade strategy; at 10,000
apps the copies are most of the memory a revision (or a plan's view of the live apps)
takes. :class:`Shared` hands back, for a value equal to one it has seen, that first one
(hash-consing, as ``sys.intern`` does for strings). Safe only because nothing mutates an
app's JSON once loaded or read (:class:`reconciler.core.model.DesiredApp`). Equal means the
same JSON text AND equal in Python: ``1`` and ``1.0``, two key orders, a date and the text
of it, NaN and null all stay apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TypeVar

import orjson

from reconciler.core import model

T = TypeVar("T")


class Shared:
    """The values seen so far (one table per revision, or per read of Marathon)."""

    def __init__(self) -> None:
        self._seen: dict[bytes, object] = {}

    def one(self, value: T) -> T:
        """The value seen first that equals ``value`` (JSON data, tuples and dataclasses of
        it), else ``value``, now seen."""
        try:
            seen = self._seen.setdefault(orjson.dumps(value), value)
        except (orjson.JSONEncodeError, TypeError):
            return value  # not plain JSON: kept as it is
        return seen if seen is not value and type(seen) is type(value) and seen == value \
            else value

    def seen_first(self, apps: Iterable[model.JSON]) -> None:
        """The top-level objects and lists of ``apps`` (an earlier revision's, say) become
        the ones seen first: a later equal value is handed back as theirs."""
        for app in apps:
            for value in app.values():
                if isinstance(value, dict | list) and value:
                    with contextlib.suppress(orjson.JSONEncodeError, TypeError):
                        self._seen.setdefault(orjson.dumps(value), value)

    def top_level(self, app: model.JSON) -> model.JSON:
        """``app`` (the caller's own dict) with each top-level object or list replaced by
        the equal one seen first; returns ``app``."""
        for key, value in list(app.items()):
            if isinstance(value, dict | list) and value:
                # Not plain JSON (a YAML set, say): kept as it is.
                with contextlib.suppress(orjson.JSONEncodeError, TypeError):
                    seen = self._seen.setdefault(orjson.dumps(value), value)
                    if seen is not value and seen == value:
                        app[key] = seen
        return app
