"""The OpenID Connect provider's keys, and bearer JWTs checked against them: the one owner of
``joserfc`` (the JOSE library of authlib's authors, which authlib itself now uses).

``Verifier(issuer=..., audience=...).verify(token) -> claims`` reads the provider's discovery
document and its JWKS (each fetch bounded in time and size, through :mod:`shell.http`), keeps
the keys for :data:`KEYS_TTL` seconds, and fetches them again when a token names a key it does
not know (a rotation), at most once per :data:`REFETCH_EVERY` seconds so that a stream of
forged key ids cannot make it hammer the provider. A token is accepted only when it is signed
by one of those keys with an asymmetric algorithm (never ``none`` nor a shared secret), was
issued by the issuer for the audience, and ``exp`` / ``nbf`` say it is valid now::

    TokenRejected      the token is not good: answer 401 (the reason goes to the audit)
    ProviderUnreachable the keys could not be read: answer 503, try again later
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from reconciler.shell import http

if TYPE_CHECKING:
    from joserfc import jwk, jwt

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")
MAX_TOKEN = 16 * 1024
"""Bytes of a bearer token, checked before any decoding."""
MAX_DOCUMENT = 512 * 1024
KEYS_TTL = 300.0
REFETCH_EVERY = 30.0
LEEWAY = 30
"""Seconds of clock skew allowed between the provider and this host."""


class TokenRejected(Exception):
    """The bearer token is not valid here; the message says why (never the token)."""


class ProviderUnreachable(Exception):
    """The provider's discovery document or keys could not be read."""


Fetch = Callable[[str], Any]


class Verifier:
    """Checks bearer JWTs of one issuer for one audience; safe to share between threads."""

    def __init__(self, *, issuer: str, audience: str, timeout: float = 5.0,
                 clock: Callable[[], float] = time.time, fetch: Fetch | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._clock = clock
        self._fetch: Fetch = fetch or (lambda url: http.get_json(
            url, timeout=timeout, max_bytes=MAX_DOCUMENT))
        self._lock = threading.Lock()
        self._keys: jwk.KeySet | None = None
        self._fetched_at = float("-inf")

    def verify(self, token: str) -> Mapping[str, Any]:
        # Imported here: a controller without sign-on never loads the JOSE stack.
        from joserfc import errors as jose_errors
        from joserfc import jwt

        if len(token) > MAX_TOKEN:
            raise TokenRejected("token too large")
        try:
            decoded = self._decode(token, self._key_set(refresh=False))
        except jose_errors.InvalidKeyIdError:
            decoded = self._decode(token, self._key_set(refresh=True))
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()), leeway=LEEWAY,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True}, sub={"essential": True})
        try:
            registry.validate(decoded.claims)
        except jose_errors.JoseError as e:
            raise TokenRejected(_reason(e)) from e
        return decoded.claims

    def _decode(self, token: str, keys: jwk.KeySet) -> jwt.Token:
        from joserfc import errors as jose_errors
        from joserfc import jws, jwt

        try:
            return jwt.decode(token, keys, algorithms=list(ALGORITHMS),
                              registry=jws.JWSRegistry(algorithms=list(ALGORITHMS)))
        except jose_errors.InvalidKeyIdError:
            raise
        except (jose_errors.JoseError, ValueError, TypeError, KeyError) as e:
            raise TokenRejected(_reason(e)) from e

    def _key_set(self, *, refresh: bool) -> jwk.KeySet:
        with self._lock:
            age = self._clock() - self._fetched_at
            stale = self._keys is None or age > KEYS_TTL
            if stale or (refresh and age > REFETCH_EVERY):
                self._keys = self._read_keys()
                self._fetched_at = self._clock()
            elif refresh:
                raise TokenRejected("signed by an unknown key")
            assert self._keys is not None
            return self._keys

    def _read_keys(self) -> jwk.KeySet:
        from joserfc import errors as jose_errors
        from joserfc import jwk

        try:
            document = self._fetch(f"{self.issuer}/.well-known/openid-configuration")
            if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") \
                    != self.issuer or not isinstance(document.get("jwks_uri"), str):
                raise ProviderUnreachable("the discovery document does not name this issuer "
                                          "and its jwks_uri")
            return jwk.KeySet.import_key_set(self._fetch(document["jwks_uri"]))
        except http.HttpError as e:
            raise ProviderUnreachable(f"cannot read the provider's keys: {e}") from e
        except (jose_errors.JoseError, ValueError, TypeError, KeyError) as e:
            raise ProviderUnreachable(f"the provider's keys are not a JWK set: {e}") from e


def _reason(error: Exception) -> str:
    text = getattr(error, "description", None) or str(error) or type(error).__name__
    return f"invalid token: {text}"[:200]
