"""Mask secret values in anything we show: diffs, patches, app definitions, text.

What is secret: every entry under ``/secrets``, environment variables that reference a secret
(``{"secret": "name"}``) or whose name looks secret (PASSWORD, TOKEN, SECRET, KEY...), and the
deprecated docker registry credential. Masking keeps the structure (keys, list lengths) so that
a reader still sees *that* something changed, never *what* it is.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

SECRET_NAME = re.compile(r"PASS(WORD|WD)?|TOKEN|SECRET|KEY|CREDENTIAL|PRIVATE|AUTH", re.I)
"""Environment variable names whose values we never show."""


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def is_secret_pointer(pointer: str) -> bool:
    """True when the value at ``pointer`` (within an app) is secret as a whole."""
    tokens = _tokens(pointer)
    if len(tokens) >= 2 and tokens[0] == "secrets":
        return True
    if len(tokens) >= 2 and tokens[0] == "env" and is_secret_name(tokens[1]):
        return True
    return tokens[:4] == ["container", "docker", "credential", "secret"]


def mask(value: Any, *, pointer: str = "") -> Any:
    """``value`` (found at ``pointer`` within an app; the whole app by default), masked.

    Never mutates ``value``; returns it unchanged when nothing in it is secret.
    """
    if is_secret_pointer(pointer):
        return _mask_leaves(value)
    if isinstance(value, dict):
        if _is_secret_reference(value) and pointer.startswith("/env/"):
            return MASK
        masked = {k: mask(v, pointer=f"{pointer}/{_escape(k)}") for k, v in value.items()}
        return value if all(masked[k] is value[k] for k in value) else masked
    if isinstance(value, list):
        items = [mask(v, pointer=f"{pointer}/{i}") for i, v in enumerate(value)]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def mask_patch(ops: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> tuple[dict[str, Any],
                                                                                ...]:
    """RFC 6902 operations with every ``value`` masked according to its ``path``."""
    return tuple(
        {**op, "value": mask(op["value"], pointer=op["path"])} if "value" in op else dict(op)
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
