"""Single sign-on and roles against a real OpenID Connect provider (``oidc-provider-mock``, a
child process): bearer JWTs checked against its keys, roles from the groups claim, named
machine tokens, anonymous reading closed, the authorization code flow with PKCE, the session
cookie, CSRF and sign-out. The API and dashboard run in uvicorn, as the controller mounts them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fastapi
import pytest
import requests
from joserfc import jwk, jwt

from reconciler.core import access
from reconciler.shell import config, oidc, records
from reconciler.shell.ports import free_port
from reconciler.web import app as web_app
from reconciler.web import auth, context
from tests.support import provider
from tests.web import server, test_report

CI_TOKEN = "ci-deployer-token-5b0c2e7a91"
GRAFANA_TOKEN = "grafana-reader-token-77d1e0"
OLD_TOKEN = "the-single-old-api-token"


class Controller:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str]] = []

    def request_sync(self, app_id: str | None, who: str) -> str:
        self.calls.append(("sync", app_id, who))
        return "sync queued"

    def rollback(self, app_id: str, who: str) -> str:
        self.calls.append(("rollback", app_id, who))
        return "rolled back"


@dataclasses.dataclass
class Site:
    url: str
    store: records.RecordStore
    controller: Controller
    provider: provider.Provider


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[provider.Provider]:
    with provider.running(tmp_path_factory.mktemp("provider") / "provider.log") as running:
        yield running


def _settings(idp: provider.Provider, tmp_path: Path, *, url: str, **extra: str
              ) -> config.Settings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    tokens = tmp_path / "tokens"
    tokens.write_text(
        "# automation\n"
        f"ci-deployer  operator  sha256:{access.token_digest(CI_TOKEN)}\n"
        f"grafana      viewer    sha256:{access.token_digest(GRAFANA_TOKEN)}\n")
    return config.load({
        "HOME": str(tmp_path), "RECONCILER_OIDC_ISSUER": idp.issuer,
        "RECONCILER_OIDC_CLIENT_ID": provider.CLIENT_ID,
        "RECONCILER_OIDC_CLIENT_SECRET": provider.CLIENT_SECRET,
        "RECONCILER_OIDC_ROLES": provider.ROLES,
        "RECONCILER_SESSION_SECRET": "a-session-secret-of-the-host-0123456789",
        "RECONCILER_PUBLIC_URL": url, "RECONCILER_TOKENS_FILE": str(tokens),
        "RECONCILER_API_TOKEN": OLD_TOKEN,
        **{f"RECONCILER_{k.upper()}": v for k, v in extra.items()}})


@contextmanager
def _site(idp: provider.Provider, tmp_path: Path, *, policy_change: dict[str, Any] | None = None,
          **extra: str) -> Iterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = _settings(idp, tmp_path, url=url, **extra)
    store = test_report.store_with_drift(tmp_path)
    controller = Controller()
    policy = auth.Access.from_settings(settings)
    if policy_change:
        policy = dataclasses.replace(policy, **policy_change)
    deps = context.Deps(records=store, live_apps=list, request_sync=controller.request_sync,
                        rollback=controller.rollback, token=settings.api_token, access=policy)
    app = web_app.oncall(fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None),
                         deps, settings=settings)
    try:
        with server.serving(app, port=port):
            yield Site(url=url, store=store, controller=controller, provider=idp)
    finally:
        store.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_viewer_jwt_reads_but_may_not_sync_and_an_operator_jwt_syncs_named_in_the_record(
        idp: provider.Provider, tmp_path: Path) -> None:
    viewer = idp.id_token(provider.VIEWER)
    operator = idp.id_token(provider.OPERATOR)
    with _site(idp, tmp_path) as site:
        read = requests.get(f"{site.url}/api/v1/apps", headers=_bearer(viewer), timeout=10)
        refused = requests.post(f"{site.url}/api/v1/sync", headers=_bearer(viewer), timeout=10)
        done = requests.post(f"{site.url}/api/v1/apps/dirac/fts/sync", headers=_bearer(operator),
                             timeout=10)
    assert read.status_code == 200
    assert refused.status_code == 403, refused.text
    assert "vera.viewer@example.org is viewer, this needs operator" in refused.json()["detail"]
    assert done.status_code == 200, done.text
    assert done.json()["requested_by"] == "oscar.oncall@example.org"
    assert site.controller.calls == [("sync", "/dirac/fts", "oscar.oncall@example.org")]
    entries = {(e.who, e.action, e.result) for e in site.store.audit_log()}
    assert ("oscar.oncall@example.org", "sync", "sync queued") in entries
    # The refusal is audited too, naming the person.
    assert any(e.who == "vera.viewer@example.org" and "needs operator" in (e.result or "")
               for e in site.store.audit_log())


def _claims(idp: provider.Provider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": idp.issuer, "aud": provider.CLIENT_ID, "sub": "oscar", "iat": now,
            "exp": now + 600, "email": "oscar.oncall@example.org",
            "groups": [provider.OPERATORS], **changes}


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_expired_foreign_audience_unsigned_and_self_signed_tokens_get_401(
        idp: provider.Provider, tmp_path: Path) -> None:
    genuine = idp.id_token(provider.OPERATOR)
    other_audience = idp.id_token(provider.OPERATOR, client_id="another-application")
    forger = jwk.RSAKey.generate_key(2048, parameters={"kid": "forged"})
    self_signed = jwt.encode({"alg": "RS256", "kid": "forged"}, _claims(idp), forger)
    hmac_signed = jwt.encode({"alg": "HS256"}, _claims(idp),
                             jwk.OctKey.import_key("a-guessed-shared-secret-0123456789"))
    tokens = {"other audience": other_audience, "unsigned": _unsigned(_claims(idp)),
              "self-signed": self_signed, "shared secret": hmac_signed,
              "tampered": genuine[:-8] + ("A" * 8 if not genuine.endswith("A" * 8) else "B" * 8),
              "too large": genuine + "A" * oidc.MAX_TOKEN}
    with _site(idp, tmp_path) as site:
        answers = {name: requests.post(f"{site.url}/api/v1/sync", headers=_bearer(token),
                                       timeout=10) for name, token in tokens.items()}
        genuine_answer = requests.post(f"{site.url}/api/v1/sync", headers=_bearer(genuine),
                                       timeout=10)
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(tokens, 401)
    assert all(a.headers["WWW-Authenticate"] == "Bearer" for a in answers.values())
    assert genuine_answer.status_code == 200  # the same site takes a good one
    assert site.controller.calls == [("sync", None, "oscar.oncall@example.org")]

    # Two hours on, the genuine token has expired: the verifier's clock says so.
    later = oidc.Verifier(issuer=idp.issuer, audience=provider.CLIENT_ID,
                          clock=lambda: time.time() + 7200)
    with _site(idp, tmp_path / "later", policy_change={"verifier": later}) as site:
        expired = requests.post(f"{site.url}/api/v1/sync", headers=_bearer(genuine),
                                timeout=10)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"], expired.text
    assert site.controller.calls == []


def test_named_machine_tokens_act_with_their_role_and_records_name_them(
        idp: provider.Provider, tmp_path: Path) -> None:
    with _site(idp, tmp_path) as site:
        ci = requests.post(f"{site.url}/api/v1/apps/dirac/fts/rollback",
                           headers=_bearer(CI_TOKEN), timeout=10)
        grafana_reads = requests.get(f"{site.url}/api/v1/drift",
                                     headers=_bearer(GRAFANA_TOKEN), timeout=10)
        grafana_syncs = requests.post(f"{site.url}/api/v1/sync",
                                      headers=_bearer(GRAFANA_TOKEN), timeout=10)
        old = requests.post(f"{site.url}/api/v1/sync",
                            headers={**_bearer(OLD_TOKEN), "X-Reconciler-User": "carol"},
                            timeout=10)
        unknown = requests.post(f"{site.url}/api/v1/sync", headers=_bearer("not-a-token"),
                                timeout=10)
    assert ci.status_code == 200 and ci.json()["requested_by"] == "token:ci-deployer"
    assert grafana_reads.status_code == 200
    assert grafana_syncs.status_code == 403
    assert old.status_code == 200 and old.json()["requested_by"] == "carol@127.0.0.1"
    assert unknown.status_code == 401
    assert site.controller.calls == [("rollback", "/dirac/fts", "token:ci-deployer"),
                                     ("sync", None, "carol@127.0.0.1")]
    assert ("token:ci-deployer", "rollback") in {(e.who, e.action)
                                                 for e in site.store.audit_log()}


def test_with_anonymous_reading_closed_pages_send_to_sign_on_and_the_api_answers_401(
        idp: provider.Provider, tmp_path: Path) -> None:
    viewer = idp.id_token(provider.VIEWER)
    nobody = idp.id_token(provider.NOBODY)
    with _site(idp, tmp_path, anonymous_read="false") as site:
        api_anonymous = requests.get(f"{site.url}/api/v1/apps", timeout=10)
        page_anonymous = requests.get(f"{site.url}/drift?open_only=true", timeout=10,
                                      allow_redirects=False)
        api_viewer = requests.get(f"{site.url}/api/v1/apps", headers=_bearer(viewer),
                                  timeout=10)
        api_no_role = requests.get(f"{site.url}/api/v1/apps", headers=_bearer(nobody),
                                   timeout=10)
        ops = requests.get(f"{site.url}/auth/session", timeout=10)
    assert api_anonymous.status_code == 401
    assert page_anonymous.status_code == 303
    assert page_anonymous.headers["Location"] == (
        f"{site.url}/login?next=%2Fdrift%3Fopen_only%3Dtrue")
    assert api_viewer.status_code == 200 and api_no_role.status_code == 403
    assert ops.json()["signed_in"] is False


def test_the_anonymous_reader_of_old_still_reads_without_sign_on(
        idp: provider.Provider, tmp_path: Path) -> None:
    with _site(idp, tmp_path) as site:
        page = requests.get(f"{site.url}/", timeout=10)
        api = requests.get(f"{site.url}/api/v1/apps", timeout=10)
        action = requests.post(f"{site.url}/api/v1/sync", timeout=10)
    assert page.status_code == 200 and api.status_code == 200
    assert action.status_code == 401 and site.controller.calls == []


def _sign_in(site: Site, person: provider.Person, *, next_path: str = "/") -> requests.Session:
    """The authorization code flow as the browser runs it: our /login, the provider's page
    (picking the subject), the callback; returns the browser's cookies."""
    browser = requests.Session()
    to_provider = browser.get(f"{site.url}/login", params={"next": next_path},
                              allow_redirects=False, timeout=10)
    assert to_provider.status_code == 302, to_provider.text
    authorize = to_provider.headers["Location"]
    assert authorize.startswith(f"{site.provider.issuer}/oauth2/authorize?")
    picked = browser.post(authorize, data={"sub": person.sub}, allow_redirects=False,
                          timeout=10)
    assert picked.status_code == 302, picked.text
    back = browser.get(picked.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 303, back.text
    assert back.headers["Location"] == next_path
    return browser


def test_login_asks_the_provider_with_pkce_state_and_nonce_and_sets_a_strict_cookie(
        idp: provider.Provider, tmp_path: Path) -> None:
    with _site(idp, tmp_path) as site:
        first = requests.get(f"{site.url}/login", allow_redirects=False, timeout=10)
        second = requests.get(f"{site.url}/login", allow_redirects=False, timeout=10)
        open_redirect = _sign_in(site, provider.VIEWER, next_path="/drift")
        evil = requests.Session()
        evil.cookies.update(open_redirect.cookies)
        outside = evil.get(f"{site.url}/login", params={"next": "//evil.example.org/"},
                           allow_redirects=False, timeout=10)
    asked = [urllib.parse.parse_qs(urllib.parse.urlsplit(a.headers["Location"]).query)
             for a in (first, second)]
    for query in asked:
        assert query["response_type"] == ["code"]
        assert query["client_id"] == [provider.CLIENT_ID]
        assert query["redirect_uri"] == [f"{site.url}/auth/callback"]
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) >= 43
        assert query["state"][0] and query["nonce"][0]
    # Fresh secrets for each sign-on.
    assert asked[0]["state"] != asked[1]["state"]
    assert asked[0]["code_challenge"] != asked[1]["code_challenge"]
    cookie = first.headers["set-cookie"].lower()
    assert "reconciler_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # http://127.0.0.1: a Secure cookie would never come back
    redirected = urllib.parse.parse_qs(urllib.parse.urlsplit(
        outside.headers["Location"]).query)
    assert outside.status_code == 302 and redirected["redirect_uri"] == [
        f"{site.url}/auth/callback"]


def test_the_cookie_is_secure_behind_an_https_public_url(
        idp: provider.Provider, tmp_path: Path) -> None:
    settings = _settings(idp, tmp_path, url="https://reconciler.example.org")
    store = test_report.store_with_drift(tmp_path)
    deps = context.Deps(records=store, live_apps=list, request_sync=lambda a, w: "queued",
                        rollback=lambda a, w: "done", token=None,
                        access=auth.Access.from_settings(settings))
    app = web_app.oncall(fastapi.FastAPI(), deps, settings=settings)
    try:
        with server.serving(app) as url:
            answer = requests.get(f"{url}/login", allow_redirects=False, timeout=10)
    finally:
        store.close()
    assert "; secure" in answer.headers["set-cookie"].lower()


def test_a_signed_in_operator_acts_only_with_the_csrf_token_and_signs_out(
        idp: provider.Provider, tmp_path: Path) -> None:
    with _site(idp, tmp_path) as site:
        browser = _sign_in(site, provider.OPERATOR)
        me = browser.get(f"{site.url}/auth/session", timeout=10).json()
        # A page of another site can make the browser POST with the cookie, not read the token.
        cross_site = browser.post(f"{site.url}/api/v1/sync", timeout=10,
                                  headers={"Origin": "https://evil.example.org"})
        wrong = browser.post(f"{site.url}/api/v1/sync", headers={"X-CSRF-Token": "guess"},
                             timeout=10)
        calls_before = list(site.controller.calls)
        done = browser.post(f"{site.url}/api/v1/sync",
                            headers={"X-CSRF-Token": me["csrf_token"]}, timeout=10)
        forged_logout = browser.post(f"{site.url}/logout", data={"csrf_token": "guess"},
                                     allow_redirects=False, timeout=10)
        still_in = browser.get(f"{site.url}/auth/session", timeout=10).json()
        logout = browser.post(f"{site.url}/logout", data={"csrf_token": me["csrf_token"]},
                              allow_redirects=False, timeout=10)
        after = browser.get(f"{site.url}/auth/session", timeout=10).json()
        again = browser.post(f"{site.url}/api/v1/sync",
                             headers={"X-CSRF-Token": me["csrf_token"]}, timeout=10)
    assert me["signed_in"] and me["name"] == "oscar.oncall@example.org"
    assert me["role"] == "operator"
    assert cross_site.status_code == 403 and "CSRF" in cross_site.json()["detail"]
    assert wrong.status_code == 403 and calls_before == []
    assert done.status_code == 200, done.text
    assert site.controller.calls == [("sync", None, "oscar.oncall@example.org")]
    assert forged_logout.status_code == 403 and still_in["signed_in"]
    assert logout.status_code in (302, 303)
    assert logout.headers["Location"].startswith(f"{site.provider.issuer}/oauth2/end_session")
    assert "id_token_hint=" in logout.headers["Location"]
    assert after["signed_in"] is False and again.status_code == 401
