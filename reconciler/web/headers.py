"""Security headers on every response of the web server: an ASGI middleware.

The dashboard's only script and only style sheet are inline blocks of its templates
(``base.html``'s ``<script>``, ``_style.html``'s ``<style>``), so the Content-Security-Policy
allows exactly those blocks by their SHA-256 hash, computed from the templates themselves, and
nothing else: no other script, no inline event handler, no external asset, no framing. The
script's ``fetch`` calls go to this server (``connect-src 'self'``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re

from reconciler.web import limits, report

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)
_TEMPLATES = ("base.html", "_style.html", "report.html")


def inline_hashes(html: str) -> dict[str, list[str]]:
    """``{"script": [...], "style": [...]}``: the CSP source of each inline block of ``html``."""
    found: dict[str, list[str]] = {"script": [], "style": []}
    for kind, content in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
        found[kind].append(f"'sha256-{digest}'")
    return found


@functools.cache
def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """The policy for every page, from the inline blocks of the templates as shipped;
    ``form_targets``: origins a form may lead to besides this site (the sign-on provider,
    where signing out ends)."""
    loader = report.environment().loader
    assert loader is not None
    scripts: set[str] = set()
    styles: set[str] = set()
    for name in _TEMPLATES:
        source, _, _ = loader.get_source(report.environment(), name)
        hashes = inline_hashes(source)
        scripts.update(hashes["script"])
        styles.update(hashes["style"])
    return "; ".join([
        "default-src 'none'",
        f"script-src {_sources(scripts)}",
        f"style-src {_sources(styles)}",
        "connect-src 'self'", "img-src 'self' data:",
        " ".join(["form-action 'self'", *form_targets]),
        "base-uri 'none'", "frame-ancestors 'none'",
    ])


def _sources(hashes: set[str]) -> str:
    return " ".join(sorted(hashes)) or "'none'"


def security_headers(form_targets: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", content_security_policy(form_targets).encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


class SecurityHeaders:
    """Adds :func:`security_headers` to every HTTP response that does not set them itself."""

    def __init__(self, app: limits.ASGIApp, form_targets: tuple[str, ...] = ()) -> None:
        self._app = app
        self._headers = security_headers(form_targets)

    async def __call__(self, scope: limits.Scope, receive: limits.Receive,
                       send: limits.Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: limits.Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()),
                                      *((n, v) for n, v in self._headers if n not in present)]
            await send(message)

        await self._app(scope, receive, with_headers)
