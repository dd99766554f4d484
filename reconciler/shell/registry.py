"""A small Docker Registry HTTP API v2 client: the only module that talks to image registries.

Two questions only: which tags a repository has (``GET /v2/<name>/tags/list``, following
``Link`` pagination) and which manifest digest a tag names (``HEAD
/v2/<name>/manifests/<tag>`` with the OCI and Docker manifest media types, answer in
``Docker-Content-Digest``).

Authentication: anonymous first; on a ``401`` the ``WWW-Authenticate`` challenge decides.
``Basic`` gets the host's credentials for that registry; ``Bearer realm=...,service=...,
scope=...`` gets a token from the realm (with those credentials, or anonymously) and the
request is sent again with it. Credentials come from the host only (a Docker-style
``config.json``, see :func:`read_auth_file`), never from the config repo, and never appear
in a ``repr``, a log line or an error. Every response is bounded (timeout, size) before it
is parsed.

Exception tree::

    RegistryError                 ``reason`` is safe to log and record
    ├── RegistryUnavailable       unreachable, timed out, 5xx, oversized or garbled answer:
    │                             retry later
    ├── AuthRefused               401/403 after authenticating: a human fixes credentials
    └── NotFound                  no such repository or tag: a human fixes the policy
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
Session = requests.Session
"""What callers may inject (tests plug a session in; nothing else of ``requests`` leaks)."""
_MAX_BYTES = 4 * 1024 * 1024
"""The most a tag page or a token may weigh; a registry sending more is broken or hostile."""
_MAX_PAGES = 200
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """Base of the registry errors; ``reason`` holds no credentials."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RegistryUnavailable(RegistryError):
    """Temporary: retry with backoff."""


class AuthRefused(RegistryError):
    """Stalling: the registry refuses these credentials (or their absence)."""


class NotFound(RegistryError):
    """Stalling: the repository or tag does not exist."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def read_auth_file(path: Path) -> dict[str, Credentials]:
    """Credentials per registry host from a Docker-style ``config.json`` on the host::

        {"auths": {"registry.example.org": {"auth": "<base64 user:password>"},
                   "127.0.0.1:5000": {"username": "u", "password": "p"}}}

    Keys may be ``host[:port]`` or a URL. Raises :class:`AuthRefused` when unreadable.
    """
    try:
        data = json.loads(path.read_text())
        auths = data.get("auths") or {}
        found: dict[str, Credentials] = {}
        for key, entry in auths.items():
            if "auth" in entry:
                user, colon, password = base64.b64decode(
                    entry["auth"], validate=True).decode().partition(":")
                if not colon:
                    raise ValueError("auth is not base64 of user:password")
            else:
                user, password = entry["username"], entry["password"]
            found[host_of(key)] = Credentials(username=user, password=password)
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError,
            binascii.Error) as e:
        # Not chained and no content quoted: the file holds secrets.
        raise AuthRefused(f"registry auth file {path}: unreadable ({type(e).__name__})"
                          ) from None


def host_of(registry: str) -> str:
    """``https://r.example.org:5000/`` and ``r.example.org:5000`` -> ``r.example.org:5000``."""
    return registry.split("://", 1)[-1].strip("/").split("/", 1)[0]


def base_url(registry: str) -> str:
    """A registry setting as a base URL: ``host[:port]`` means HTTPS."""
    return registry.rstrip("/") if "://" in registry else f"https://{registry.rstrip('/')}"


class Client:
    """One registry. Not thread-safe (one per thread); authorizations are cached per scope."""

    def __init__(self, registry: str, *, credentials: Credentials | None = None,
                 session: requests.Session | None = None, timeout: float = 10.0,
                 max_bytes: int = _MAX_BYTES) -> None:
        self._base = base_url(registry)
        self._credentials = credentials
        self._session = session or requests.Session()
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._authorizations: dict[str, str] = {}
        """The Authorization header that worked last, per scope (a token expires: 401 again)."""

    def __repr__(self) -> str:
        return f"registry.Client({self._base!r})"

    def tags(self, repository: str) -> tuple[str, ...]:
        """Every tag of ``repository``, across all pages."""
        url = f"{self._base}/v2/{repository}/tags/list"
        found: list[str] = []
        for _ in range(_MAX_PAGES):
            response = self._request("GET", url, repository=repository,
                                     what=f"{repository} tags")
            body = self._json(response, what=f"{repository} tags")
            page = body.get("tags") if isinstance(body, dict) else None
            if page is not None and not (isinstance(page, list)
                                         and all(isinstance(t, str) for t in page)):
                raise RegistryUnavailable(f"{self._base}: {repository} tags: not a tag list")
            found.extend(page or ())
            following = _next_link(response.headers.get("Link"), base=url)
            if following is None:
                return tuple(found)
            if host_of(following) != host_of(self._base):
                raise RegistryUnavailable(f"{self._base}: {repository} tags: next page on "
                                          "another host; refused")
            url = following
        raise RegistryUnavailable(f"{self._base}: {repository} tags: more than {_MAX_PAGES} "
                                  "pages")

    def digest(self, repository: str, tag: str) -> str:
        """The manifest digest ``repository:tag`` names now (``sha256:...``)."""
        url = f"{self._base}/v2/{repository}/manifests/{urllib.parse.quote(tag)}"
        response = self._request("HEAD", url, repository=repository, what=f"{repository}:{tag}",
                                 headers={"Accept": MANIFEST_TYPES})
        response.close()
        digest = response.headers.get("Docker-Content-Digest", "")
        if not _DIGEST.match(digest):
            raise RegistryUnavailable(f"{self._base}: {repository}:{tag}: no sha256 "
                                      "Docker-Content-Digest in the answer")
        return digest

    # -- HTTP ------------------------------------------------------------------------------

    def _request(self, method: str, url: str, *, repository: str, what: str,
                 headers: Mapping[str, str] | None = None) -> requests.Response:
        scope = f"repository:{repository}:pull"
        headers = dict(headers or {})
        if scope in self._authorizations:
            headers["Authorization"] = self._authorizations[scope]
        response = self._send(method, url, headers=headers, what=what)
        if response.status_code == 401:
            response.close()
            headers["Authorization"] = self._authorization(
                response.headers.get("WWW-Authenticate", ""), scope=scope, what=what)
            self._authorizations[scope] = headers["Authorization"]
            response = self._send(method, url, headers=headers, what=what)
        if response.status_code in (401, 403):
            response.close()
            given = "with" if self._credentials else "without"
            raise AuthRefused(f"{self._base}: {what}: access refused ({response.status_code}) "
                              f"{given} credentials for {host_of(self._base)}")
        if response.status_code == 404:
            response.close()
            raise NotFound(f"{self._base}: {what}: not found")
        if response.status_code != 200:
            response.close()
            raise RegistryUnavailable(f"{self._base}: {what}: HTTP {response.status_code}")
        return response

    def _send(self, method: str, url: str, *, headers: Mapping[str, str],
              what: str) -> requests.Response:
        try:
            return self._session.request(method, url, headers=headers, timeout=self._timeout,
                                         stream=True, allow_redirects=method == "HEAD")
        except requests.RequestException as e:
            raise RegistryUnavailable(f"{self._base}: {what}: unreachable "
                                      f"({type(e).__name__})") from e

    def _authorization(self, challenge: str, *, scope: str, what: str) -> str:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if self._credentials is None:
                raise AuthRefused(f"{self._base}: {what}: the registry wants credentials; "
                                  f"none are configured for {host_of(self._base)}")
            pair = f"{self._credentials.username}:{self._credentials.password}"
            return "Basic " + base64.b64encode(pair.encode()).decode()
        if scheme.lower() == "bearer":
            token = self._token(dict(_CHALLENGE.findall(params)), scope=scope, what=what)
            return f"Bearer {token}"
        raise AuthRefused(f"{self._base}: {what}: unsupported authentication "
                          f"{scheme or '(no challenge)'!r}")

    def _token(self, challenge: Mapping[str, str], *, scope: str, what: str) -> str:
        realm = challenge.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise AuthRefused(f"{self._base}: {what}: bearer challenge without a realm")
        params = {"scope": challenge.get("scope", scope)}
        if "service" in challenge:
            params["service"] = challenge["service"]
        auth = ((self._credentials.username, self._credentials.password)
                if self._credentials else None)
        try:
            response = self._session.get(realm, params=params, auth=auth,
                                         timeout=self._timeout, stream=True)
        except requests.RequestException as e:
            raise RegistryUnavailable(f"{self._base}: {what}: token server unreachable "
                                      f"({type(e).__name__})") from e
        if response.status_code in (401, 403):
            response.close()
            raise AuthRefused(f"{self._base}: {what}: the token server refused "
                              f"({response.status_code})")
        if response.status_code != 200:
            response.close()
            raise RegistryUnavailable(f"{self._base}: {what}: token server answered HTTP "
                                      f"{response.status_code}")
        body = self._json(response, what="token")
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryUnavailable(f"{self._base}: {what}: the token server sent no token")
        return token

    def _json(self, response: requests.Response, *, what: str) -> Any:
        """The body as JSON, read no further than the size limit."""
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            response.close()
            raise RegistryUnavailable(f"{self._base}: {what}: answer of {declared} bytes is "
                                      f"over the {self._max_bytes} byte limit")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=65536):
                size += len(chunk)
                if size > self._max_bytes:
                    raise RegistryUnavailable(f"{self._base}: {what}: answer over the "
                                              f"{self._max_bytes} byte limit")
                chunks.append(chunk)
        except requests.RequestException as e:
            raise RegistryUnavailable(f"{self._base}: {what}: answer cut off "
                                      f"({type(e).__name__})") from e
        finally:
            response.close()
        try:
            return json.loads(b"".join(chunks))
        except ValueError as e:
            raise RegistryUnavailable(f"{self._base}: {what}: answer is not JSON") from e


def _next_link(header: str | None, *, base: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, as an absolute URL."""
    if not header:
        return None
    for part in header.split(","):
        match = re.match(r'\s*<([^>]*)>\s*;(.*)', part)
        if match and re.search(r'rel="?next"?', match[2]):
            return urllib.parse.urljoin(base, match[1])
    return None
