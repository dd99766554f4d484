"""Who asks, and whether they may: the one gate of every read and every action.

A request proves who it is in one of three ways, tried in this order:

- ``Authorization: Bearer <secret>``: a named machine token (``token:<name>``, its role from
  the tokens file), the single API token of old (``admin``; records name it as they always
  did: ``X-Reconciler-User`` and the address), or a JWT of the OIDC provider (the person, the
  role from the groups claim);
- the dashboard's session cookie, set by signing on (:mod:`reconciler.web.oidc`); an action
  sent with it must carry the session's CSRF token in ``X-CSRF-Token`` (a cross-site page can
  make the browser send the cookie, never read the token);
- nothing: anonymous, who may read when ``anonymous_read`` allows and never act.

``access.requires(Role.OPERATOR)`` is the dependency of an action route: it answers 401 (who
are you?) or 403 (you may not), auditing the refusal, and returns the name the records give
the person. ``access.reader(pages=...)`` guards reading.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import fastapi

from reconciler.core import access
from reconciler.shell import config, oidc
from reconciler.web import offload

Role = access.Role
SESSION_USER = "user"
SESSION_CSRF = "csrf"
LEGACY_TOKEN = "api-token"
_USER = re.compile(r"[^\w.@+-]")

Refused = Callable[[fastapi.Request, str, str], None]
"""``(request, who, reason)``: audits a refused action."""


def who_asked(request: fastapi.Request, user: str | None) -> str:
    """``alice@10.0.0.7`` or ``10.0.0.7``: the audit's idea of a caller of the single token."""
    address = client_address(request)
    if user:
        return f"{_USER.sub('', user)[:80]}@{address}"
    return address


def client_address(request: fastapi.Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Access:
    """The policy: machine tokens, the provider (None: no sign-on), roles, anonymous reading."""

    api_token: str | None = None
    tokens: Sequence[access.MachineToken] = ()
    verifier: oidc.Verifier | None = None
    roles: Mapping[str, Role] = field(default_factory=dict)
    groups_claim: str = "groups"
    anonymous_read: bool = True
    sign_on: bool = False
    """True when the dashboard has ``/login`` (pages then send strangers there)."""

    @classmethod
    def from_settings(cls, settings: config.Settings) -> Access:
        """The policy the settings describe; raises config.BadConfiguration for a bad
        tokens file."""
        verifier = None
        if settings.oidc_issuer is not None:
            verifier = oidc.Verifier(
                issuer=settings.oidc_issuer,
                audience=settings.oidc_audience or settings.oidc_client_id or "")
        return cls(api_token=settings.api_token, tokens=settings.machine_tokens(),
                   verifier=verifier, roles=settings.oidc_roles,
                   groups_claim=settings.oidc_groups_claim,
                   anonymous_read=settings.anonymous_read,
                   sign_on=settings.oidc_issuer is not None)

    # -- who ------------------------------------------------------------------------------------

    def person(self, claims: Mapping[str, Any], *, via: str) -> access.Identity:
        groups = access.groups_of(claims, self.groups_claim)
        return access.Identity(name=access.person_name(claims),
                               role=access.role_for_groups(groups, self.roles), via=via)

    def identify(self, request: fastapi.Request) -> access.Identity | None:
        """Who ``request`` proves to be; None for nobody; raises 401 for a bad bearer."""
        given = request.headers.get("authorization")
        if given is not None:
            return self._bearer(request, given)
        if "session" in request.scope:  # SessionMiddleware is there only with sign-on
            user = request.session.get(SESSION_USER)
            if isinstance(user, dict):
                return self.person(user, via="session")
        return None

    def _bearer(self, request: fastapi.Request, given: str) -> access.Identity:
        if not self._can_act():
            raise _unauthorized("refused: actions are disabled (no API token configured)")
        scheme, _, secret = given.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise _unauthorized("refused: expected Authorization: Bearer <token>")
        if self.api_token is not None and hmac.compare_digest(secret.encode(),
                                                              self.api_token.encode()):
            return access.Identity(
                name=who_asked(request, request.headers.get("x-reconciler-user")),
                role=Role.ADMIN, via="token")
        named = access.match_token(self.tokens, secret)
        if named is not None:
            return access.Identity(name=named.who, role=named.role, via="token")
        if self.verifier is not None and secret.count(".") == 2:
            try:
                return self.person(self.verifier.verify(secret), via="jwt")
            except oidc.TokenRejected as e:
                raise _unauthorized(f"refused: {e}") from e
            except oidc.ProviderUnreachable as e:
                raise fastapi.HTTPException(status_code=503, detail=str(e)) from e
        raise _unauthorized("refused: missing or invalid token")

    # -- may they -------------------------------------------------------------------------------

    def requires(self, needed: Role, *, refused: Refused | None = None
                 ) -> Callable[..., str]:
        """A dependency for an action needing ``needed``: the name the records give who asked."""

        def dependency(request: fastapi.Request,
                       x_csrf_token: Annotated[str | None, fastapi.Header()] = None) -> str:
            try:
                identity = self.identify(request)
                if identity is None:
                    raise _unauthorized("refused: sign on or send a bearer token"
                                        if self._can_act() else
                                        "refused: actions are disabled (no API token "
                                        "configured)")
                if identity.via == "session" and not _same_token(
                        x_csrf_token, request.session.get(SESSION_CSRF)):
                    raise fastapi.HTTPException(
                        status_code=403, detail="refused: missing or wrong CSRF token")
                if not identity.may(needed):
                    raise fastapi.HTTPException(
                        status_code=403,
                        detail=f"refused: {identity.name} is {identity.role or 'without a role'}"
                        f", this needs {needed}")
            except fastapi.HTTPException as e:
                if refused is not None:
                    refused(request, _attempted_by(self, request), str(e.detail))
                raise
            return identity.name

        return dependency

    def reader(self, *, pages: bool) -> Callable[..., Awaitable[None]]:
        """A dependency for reading: nothing to do while anonymous reading is open; else
        a viewer at least (pages send a stranger to sign on, the API answers 401)."""

        async def dependency(request: fastapi.Request) -> None:
            # A coroutine: an open read costs no thread (web/offload.py); telling who
            # reads may ask the provider for its keys, off the loop.
            if self.anonymous_read or request.method not in ("GET", "HEAD"):
                return  # actions are judged by requires()
            identity = await offload.run(lambda: self.identify(request))
            if identity is None:
                if pages and self.sign_on:
                    target = request.url.path + (f"?{request.url.query}"
                                                 if request.url.query else "")
                    raise fastapi.HTTPException(
                        status_code=303, detail="sign on first",
                        headers={"Location": str(request.url_for("login").include_query_params(
                            next=target))})
                raise _unauthorized("sign on or send a bearer token to read")
            if not identity.may(Role.VIEWER):
                raise fastapi.HTTPException(status_code=403,
                                            detail=f"{identity.name} has no role here")

        return dependency

    def _can_act(self) -> bool:
        return bool(self.api_token or self.tokens or self.verifier or self.sign_on)


def _attempted_by(policy: Access, request: fastapi.Request) -> str:
    """Who a refused request claimed to be, for the audit (never failing itself)."""
    try:
        identity = policy.identify(request)
    except fastapi.HTTPException:
        identity = None
    if identity is not None:
        return identity.name
    return who_asked(request, request.headers.get("x-reconciler-user"))


def _same_token(given: str | None, expected: object) -> bool:
    return (isinstance(given, str) and isinstance(expected, str) and bool(expected)
            and hmac.compare_digest(given.encode(), expected.encode()))


def _unauthorized(reason: str) -> fastapi.HTTPException:
    return fastapi.HTTPException(status_code=401, detail=reason,
                                 headers={"WWW-Authenticate": "Bearer"})
