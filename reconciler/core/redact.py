"""Mask secret values in anything we show: diffs, patches, app definitions, text.

What is secret: every entry under ``/secrets``, environment variables that reference a secret
(``{"secret": "name"}``) or whose name contains one of :data:`SECRET_NAME_PARTS` (PASSWORD,
PWD, TOKEN, KEY, DSN...; the one list, extended by the ``extra`` patterns a caller passes from
its configuration), and the deprecated docker registry credential. Masking keeps the
structure (keys, list lengths) so that a reader still sees *that* something changed, never
*what* it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

MASK = "***"

SECRET_NAME_PARTS = (
    "PASSWORD", "PASSWD", "PASSPHRASE", "PASS", "PWD", "TOKEN", "SECRET", "KEY", "CREDENTIAL",
    "AUTH", "PRIVATE", "DSN", "COOKIE", "SALT",
)
"""Parts of environment variable names whose values we never show, in any case: ``MYSQL_PWD``,
``db_passwd``, ``SENTRY_DSN``, ``X_API_KEY``. Masking a harmless value by mistake costs a
reader a little; showing a password costs much more, so the parts are short."""

SECRET_NAME = re.compile("|".join(SECRET_NAME_PARTS), re.I)
"""The parts as one pattern (the configured extra patterns come on top)."""


@functools.cache
def _pattern(extra: tuple[str, ...]) -> re.Pattern[str]:
    if not extra:
        return SECRET_NAME
    return re.compile("|".join([SECRET_NAME.pattern, *(f"(?:{p})" for p in extra)]), re.I)


def is_secret_name(name: str, extra: Sequence[str] = ()) -> bool:
    """True when ``name`` contains a secret part, or matches one of the ``extra`` regexes."""
    return _pattern(tuple(extra)).search(name) is not None


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def is_secret_pointer(pointer: str, extra: Sequence[str] = ()) -> bool:
    """True when the value at ``pointer`` (within an app) is secret as a whole."""
    tokens = _tokens(pointer)
    if len(tokens) >= 2 and tokens[0] == "secrets":
        return True
    if len(tokens) >= 2 and tokens[0] == "env" and is_secret_name(tokens[1], extra):
        return True
    return tokens[:4] == ["container", "docker", "credential", "secret"]


def mask(value: Any, *, pointer: str = "", extra: Sequence[str] = ()) -> Any:
    """``value`` (found at ``pointer`` within an app; the whole app by default), masked.

    ``extra``: more name patterns (regexes, any case) that make an env variable secret.
    Never mutates ``value``; returns it unchanged when nothing in it is secret.
    """
    if is_secret_pointer(pointer, extra):
        return _mask_leaves(value)
    if isinstance(value, dict):
        if _is_secret_reference(value) and pointer.startswith("/env/"):
            return MASK
        masked = {k: mask(v, pointer=f"{pointer}/{_escape(k)}", extra=extra)
                  for k, v in value.items()}
        return value if all(masked[k] is value[k] for k in value) else masked
    if isinstance(value, list):
        items = [mask(v, pointer=f"{pointer}/{i}", extra=extra) for i, v in enumerate(value)]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def mask_patch(ops: tuple[dict[str, Any], ...] | list[dict[str, Any]],
               extra: Sequence[str] = ()) -> tuple[dict[str, Any], ...]:
    """RFC 6902 operations with every ``value`` masked according to its ``path``."""
    return tuple(
        {**op, "value": mask(op["value"], pointer=op["path"], extra=extra)} if "value" in op
        else dict(op)
        for op in ops)


def mask_text(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of the given secret strings replaced by the mask."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text


def _is_secret_reference(value: dict[str, Any]) -> bool:
    return set(value) == {"secret"}


def _mask_leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_leaves(v) for v in value]
    return MASK


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
