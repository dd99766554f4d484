"""Single sign-on of the dashboard: OpenID Connect's authorization code flow with PKCE, the
session cookie, and sign-out. The one owner of authlib.

``install(app, settings=..., policy=...)`` adds, when an issuer is configured:

- ``GET /login?next=/path``: sends the browser to the provider with ``state``, ``nonce`` and
  an S256 code challenge (authlib keeps them in the session until the callback);
- ``GET /auth/callback``: authlib trades the code (with the verifier) for tokens and checks
  the ID token (signature against the provider's keys, issuer, audience, expiry, nonce); the
  session then holds the person's name claims, the groups that map to a role, a fresh CSRF
  token, and the ID token for sign-out; back to ``next`` (a path on this site only);
- ``POST /logout`` (with the session's CSRF token): forgets the session and ends the
  provider's one (RP-initiated logout) when it offers that;
- ``GET /auth/session``: who the dashboard's script is showing, and the CSRF token its
  actions send (``X-CSRF-Token``); readable by this site's pages only (same origin);
- the session cookie: signed (itsdangerous, by Starlette's SessionMiddleware) with the host's
  session secret, HttpOnly, SameSite=Lax, Secure when the public URL is https, 8 hours.
"""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from html import escape
from typing import Annotated, Any

import fastapi
from fastapi import responses
from starlette.middleware import sessions

from reconciler.core import access
from reconciler.shell import config
from reconciler.web import auth

log = logging.getLogger(__name__)

COOKIE = "reconciler_session"
SESSION_SECONDS = 8 * 3600
PROVIDER_TIMEOUT = 10.0
_NAME_CLAIMS = ("sub", "email", "preferred_username", "name")
_MAX_GROUPS = 50


def install(app: fastapi.FastAPI, *, settings: config.Settings, policy: auth.Access) -> None:
    """Sign-on routes and the session middleware on ``app`` (nothing without an issuer)."""
    if settings.oidc_issuer is None:
        return
    assert settings.public_url is not None and settings.session_secret is not None
    app.include_router(sign_on_router(settings, policy))
    app.add_middleware(sessions.SessionMiddleware, secret_key=settings.session_secret,
                       session_cookie=COOKIE, max_age=SESSION_SECONDS, same_site="lax",
                       https_only=settings.public_url.startswith("https://"))


def sign_on_router(settings: config.Settings, policy: auth.Access) -> fastapi.APIRouter:
    # Imported here: a controller without sign-on never loads authlib and its HTTP stack.
    from authlib.integrations import starlette_client

    assert settings.oidc_issuer is not None and settings.public_url is not None
    public_url = settings.public_url
    client: dict[str, Any] = {"scope": settings.oidc_scopes, "code_challenge_method": "S256",
                              "timeout": PROVIDER_TIMEOUT}
    if settings.oidc_client_secret is None:  # a public client: PKCE is its only proof
        client["token_endpoint_auth_method"] = "none"
    provider: Any = starlette_client.OAuth().register(
        "sso", client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret,
        server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
        client_kwargs=client)
    router = fastapi.APIRouter(include_in_schema=False)

    @router.get("/login", name="login")
    async def login(request: fastapi.Request,
                    next_path: Annotated[str | None, fastapi.Query(alias="next")] = None
                    ) -> responses.Response:
        request.session["next"] = _local_path(next_path)
        try:
            return await provider.authorize_redirect(
                request, redirect_uri=f"{public_url}/auth/callback")
        except Exception as e:  # noqa: BLE001 - httpx or authlib: the provider is away
            log.warning("sign-on: cannot reach the provider: %s", e)
            return _problem(502, "The sign-on provider cannot be reached; try again later.")

    @router.get("/auth/callback", name="auth_callback")
    async def callback(request: fastapi.Request) -> responses.Response:
        try:
            token = await provider.authorize_access_token(request)
        except starlette_client.OAuthError as e:
            return _problem(400, f"Sign-on failed: {e.error or 'refused'}. Sign in again.")
        except Exception as e:  # noqa: BLE001 - a bad ID token, an unreachable provider
            log.warning("sign-on: the callback failed: %s", e)
            return _problem(400, "Sign-on failed: the provider's answer was not valid.")
        claims = token.get("userinfo")
        if not claims or not claims.get("sub"):
            return _problem(400, "Sign-on failed: no ID token.")
        next_path = request.session.get("next") or "/"
        request.session.clear()
        request.session[auth.SESSION_USER] = _kept_claims(claims, policy)
        request.session[auth.SESSION_CSRF] = secrets.token_urlsafe(32)
        request.session["id_token"] = token.get("id_token")
        person = policy.person(request.session[auth.SESSION_USER], via="session")
        log.info("signed on: %s as %s", person.name, person.role or "no role")
        return responses.RedirectResponse(next_path, status_code=303)

    @router.post("/logout", name="logout")
    async def logout(request: fastapi.Request) -> responses.Response:
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        expected = request.session.get(auth.SESSION_CSRF)
        given = (form.get("csrf_token") or [""])[0]
        if not expected or not secrets.compare_digest(given, expected):
            return _problem(403, "Refused: missing or wrong CSRF token.")
        id_token = request.session.get("id_token")
        request.session.clear()
        try:
            metadata = await provider.load_server_metadata()
            if metadata.get("end_session_endpoint"):
                return await provider.logout_redirect(
                    request, post_logout_redirect_uri=f"{public_url}/",
                    id_token_hint=id_token)
        except Exception as e:  # noqa: BLE001 - signed out here all the same
            log.warning("sign-out: the provider's session stays: %s", e)
        return responses.RedirectResponse("/", status_code=303)

    @router.get("/auth/session")
    async def session(request: fastapi.Request) -> responses.JSONResponse:
        # On the loop: it reads the signed cookie, nothing that blocks (web/offload.py).
        user = request.session.get(auth.SESSION_USER)
        body: dict[str, Any] = {"signed_in": False, "login": "/login"}
        if isinstance(user, dict):
            person = policy.person(user, via="session")
            body = {"signed_in": True, "name": person.name,
                    "role": str(person.role) if person.role else None,
                    "csrf_token": request.session.get(auth.SESSION_CSRF)}
        return responses.JSONResponse(body, headers={"Cache-Control": "no-store"})

    return router


def _kept_claims(claims: Any, policy: auth.Access) -> dict[str, Any]:
    """What the session keeps of the ID token: the names, and only the groups that give a
    role (the cookie must stay small whatever the provider sends)."""
    kept = {k: str(claims[k])[:200] for k in _NAME_CLAIMS if isinstance(claims.get(k), str)}
    groups = [g for g in access.groups_of(claims, policy.groups_claim) if g in policy.roles]
    return {**kept, **_nested(policy.groups_claim, groups[:_MAX_GROUPS])}


def _nested(claim: str, value: list[str]) -> dict[str, Any]:
    """``realm_access.roles`` -> ``{"realm_access": {"roles": value}}``."""
    out: Any = value
    for part in reversed(claim.split(".")):
        out = {part: out}
    return dict(out)


def _local_path(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urllib.parse.urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _problem(status: int, message: str) -> responses.HTMLResponse:
    return responses.HTMLResponse(
        f"<!DOCTYPE html><title>reconciler</title><p>{escape(message)}</p>"
        f'<p><a href="/login">Sign in</a> &middot; <a href="/">Dashboard</a></p>',
        status_code=status, headers={"Cache-Control": "no-store"})
