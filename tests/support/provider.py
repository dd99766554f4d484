"""A real OpenID Connect provider for the tests: ``oidc-provider-mock`` (PyPI) as a child
process on a free port, with the people the tests sign in as.

The provider is authlib's authorization server: it signs ID tokens with its own RSA key,
publishes the key at ``/jwks``, checks redirect URIs, codes and (when sent) PKCE. Its
authorization page lets a person pick their subject; the claims (email, groups) come from
``--user-claims``. :meth:`Provider.id_token` walks the authorization code flow without a
browser, as the page's form does, for the API tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from reconciler.shell.ports import free_port
from testbed.processes import stop_process, wait_for_http

CLIENT_ID = "reconciler-dashboard"
CLIENT_SECRET = "dashboard-client-secret-3f9a"
"""The provider takes any client secret of a client it does not know (it has no public
clients: ``token_endpoint_auth_method`` ``none`` is not among its methods)."""
VIEWERS = "lhcb-shifters"
OPERATORS = "lhcb-oncall"
ROLES = f"{VIEWERS}=viewer,{OPERATORS}=operator,lhcb-admins=admin"


@dataclass(frozen=True)
class Person:
    sub: str
    email: str
    groups: tuple[str, ...]

    def claims(self) -> dict[str, object]:
        return {"sub": self.sub, "email": self.email, "preferred_username": self.sub,
                "groups": list(self.groups)}


VIEWER = Person("vera", "vera.viewer@example.org", (VIEWERS, "lhcb"))
OPERATOR = Person("oscar", "oscar.oncall@example.org", (OPERATORS, VIEWERS))
NOBODY = Person("nina", "nina.nogroup@example.org", ("someone-else",))
PEOPLE = (VIEWER, OPERATOR, NOBODY)


@dataclass(frozen=True)
class Provider:
    issuer: str

    def id_token(self, person: Person, *, client_id: str = CLIENT_ID) -> str:
        """An ID token for ``person``, got as a client gets it: authorize, then trade the
        code at the token endpoint."""
        redirect = "http://127.0.0.1:9/callback"
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                 "scope": "openid email profile", "state": "s", "nonce": "n"}
        picked = requests.post(f"{self.issuer}/oauth2/authorize", params=query,
                               data={"sub": person.sub}, allow_redirects=False, timeout=10)
        assert picked.status_code == 302, picked.text
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(
            picked.headers["Location"]).query)["code"][0]
        answer = requests.post(f"{self.issuer}/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": client_id, "client_secret": "unused"}, timeout=10)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id_token"])


@contextmanager
def running(log: Path, people: Sequence[Person] = PEOPLE) -> Iterator[Provider]:
    port = free_port()
    arguments = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1",
                 "--port", str(port)]
    for person in people:
        arguments += ["--user-claims", json.dumps(person.claims())]
    with open(log, "ab") as out:
        process = subprocess.Popen(arguments, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        issuer = f"http://127.0.0.1:{port}"
        wait_for_http(f"{issuer}/.well-known/openid-configuration", timeout=30,
                      process=process)
        yield Provider(issuer=issuer)
    finally:
        stop_process(process)
