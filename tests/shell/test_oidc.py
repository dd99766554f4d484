"""The provider's keys as the verifier reads them: rotation, a bounded refetch for unknown key
ids, a discovery document for another issuer. The documents are served by a function standing
in for HTTP (the verifier's ``fetch`` seam); the keys and tokens are real (joserfc).
The provider end to end is in tests/web/test_sso.py."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwk, jwt

from reconciler.shell import oidc

ISSUER = "https://sso.example.org/realms/lhcb"


class Provider:
    def __init__(self) -> None:
        self.key = jwk.RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.fetched: list[str] = []
        self.issuer = ISSUER

    def fetch(self, url: str) -> Any:
        self.fetched.append(url)
        if url.endswith("/.well-known/openid-configuration"):
            return {"issuer": self.issuer, "jwks_uri": f"{ISSUER}/certs"}
        return {"keys": [self.key.as_dict(private=False)]}

    def token(self, key: jwk.RSAKey | None = None) -> str:
        signer = key or self.key
        now = int(time.time())
        return jwt.encode({"alg": "RS256", "kid": signer.kid},
                          {"iss": ISSUER, "aud": "reconciler", "sub": "oscar", "exp": now + 60},
                          signer)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_rotated_key_is_fetched_once_and_forged_key_ids_do_not_hammer_the_provider() -> None:
    provider, clock = Provider(), Clock()
    verifier = oidc.Verifier(issuer=ISSUER, audience="reconciler", clock=clock,
                             fetch=provider.fetch)
    assert verifier.verify(provider.token())["sub"] == "oscar"
    assert len(provider.fetched) == 2  # discovery, then the keys

    clock.now += oidc.REFETCH_EVERY + 1
    provider.key = jwk.RSAKey.generate_key(2048, parameters={"kid": "k2"})  # rotation
    assert verifier.verify(provider.token())["sub"] == "oscar"
    assert len(provider.fetched) == 4

    forger = jwk.RSAKey.generate_key(2048, parameters={"kid": "k3"})
    for _ in range(20):
        with pytest.raises(oidc.TokenRejected):
            verifier.verify(provider.token(forger))
    assert len(provider.fetched) == 4  # within REFETCH_EVERY of the last fetch: no new one


def test_keys_of_a_discovery_document_for_another_issuer_are_not_used() -> None:
    provider = Provider()
    provider.issuer = "https://evil.example.org"
    verifier = oidc.Verifier(issuer=ISSUER, audience="reconciler", fetch=provider.fetch)
    with pytest.raises(oidc.ProviderUnreachable, match="does not name this issuer"):
        verifier.verify(provider.token())
