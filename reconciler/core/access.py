"""Who may do what: roles, the mapping of a provider's groups to roles, the names records give
to people and tokens, and the named machine tokens file. Pure: the web layer asks it.

Roles are ordered; each includes the ones below it::

    viewer    reads every page and the API
    operator  + sync, retry (lift a quarantine), rollback, acknowledge drift, promote
    admin     + everything else, future admin actions included

The machine tokens file holds one token per line, never the token itself::

    # name       role      SHA-256 of the token (``reconciler`` prints one, see docs/sso.md)
    ci-deployer  operator  sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ANY_SIGNED_IN = "*"
"""The group that every signed-in person is in (``*=viewer``: anyone the provider knows)."""

_NAME = re.compile(r"[A-Za-z0-9][\w.@+-]{0,79}")
_UNSAFE = re.compile(r"[^\w.@+:-]")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
MAX_TOKENS = 1000


class Role(enum.IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text.strip()!r} (known: viewer, operator, admin)"
                             ) from None


@dataclass(frozen=True)
class Identity:
    """Who asks: ``name`` is what records say (``alice@example.org``, ``token:ci-deployer``);
    ``role`` None when signed in without any role; ``via`` says how they proved it
    (``session``, ``jwt``, ``token``)."""

    name: str
    role: Role | None
    via: str

    def may(self, needed: Role) -> bool:
        return self.role is not None and self.role >= needed


@dataclass(frozen=True)
class MachineToken:
    name: str
    role: Role
    digest: str
    """Hex SHA-256 of the token."""

    @property
    def who(self) -> str:
        return f"token:{self.name}"


def parse_role_mapping(text: str) -> dict[str, Role]:
    """``"lhcb-oncall=operator, lhcb-admins=admin, *=viewer"`` -> group -> role."""
    mapping: dict[str, Role] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        group, sep, role = item.rpartition("=")
        if not sep or not group.strip():
            raise ValueError(f"expected group=role, got {item!r}")
        mapping[group.strip()] = Role.parse(role)
    return mapping


def role_for_groups(groups: Iterable[str], mapping: Mapping[str, Role]) -> Role | None:
    """The highest role any of ``groups`` gives (``*`` counts for everyone), or None."""
    given = [mapping[g] for g in {*groups, ANY_SIGNED_IN} if g in mapping]
    return max(given) if given else None


def groups_of(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The groups in ``claims[claim]``: a list of names, or one name; anything else is none.
    A dotted claim (``realm_access.roles``, Keycloak's) is looked up level by level."""
    value: Any = claims
    for part in claim.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def person_name(claims: Mapping[str, Any]) -> str:
    """What records call a signed-in person: email, else preferred_username, else the
    subject; bounded and stripped of anything but name characters."""
    for key in ("email", "preferred_username", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return _UNSAFE.sub("", value.strip())[:120] or "unnamed"
    return "unnamed"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def match_token(tokens: Sequence[MachineToken], presented: str) -> MachineToken | None:
    """The named token whose digest is the presented token's; every entry is compared, in
    constant time, so the answer time does not say which names exist."""
    digest = token_digest(presented)
    found = None
    for token in tokens:
        if hmac.compare_digest(token.digest, digest):
            found = token
    return found


def parse_tokens(text: str) -> tuple[MachineToken, ...]:
    """The lines of a machine tokens file; ValueError naming the line otherwise."""
    tokens: dict[str, MachineToken] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"line {number}: expected `name role sha256:<hex>`")
        name, role, digest = fields
        if not _NAME.fullmatch(name):
            raise ValueError(f"line {number}: bad token name {name!r}")
        if name in tokens:
            raise ValueError(f"line {number}: token {name!r} named twice")
        matched = _DIGEST.fullmatch(digest.lower())
        if not matched:
            raise ValueError(f"line {number}: expected sha256:<64 hex digits>, not the token")
        try:
            tokens[name] = MachineToken(name=name, role=Role.parse(role),
                                        digest=matched.group(1))
        except ValueError as e:
            raise ValueError(f"line {number}: {e}") from None
        if len(tokens) > MAX_TOKENS:
            raise ValueError(f"more than {MAX_TOKENS} tokens")
    return tuple(tokens.values())
