"""The web server against hostile requests: bodies bounded before any work on every route,
the GitHub signature header checked before the body is read, and security headers (a CSP
that allows exactly the dashboard's inline blocks) on every response."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import fastapi
import pytest
import requests

from reconciler.web import app as web_app
from reconciler.web import context, headers, limits, webhooks
from tests.support import streaming
from tests.web import server, test_report

SECRET = "hook-secret-for-limits"
TOKEN = "token-for-limits"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """The on-call site and the webhooks, hardened as ``create_app`` does; the polls asked."""
    store = test_report.store_with_drift(tmp_path)
    polls: list[str] = []
    deps = context.Deps(records=store, live_apps=list, request_sync=lambda a, w: "queued",
                      rollback=lambda a, w: "rolled back", token=TOKEN)
    app = server.oncall_app(deps)
    app.include_router(webhooks.webhook_router(secret=SECRET, trigger_poll=polls.append))
    with server.serving(app) as url:
        yield url, polls
    store.close()


def test_a_declared_oversized_body_is_refused_on_every_route(
        site: tuple[str, list[str]]) -> None:
    url, polls = site
    for path, limit in [("/api/v1/sync", limits.DEFAULT_MAX_BODY),
                        ("/api/v1/apps/dirac/fts/rollback", limits.DEFAULT_MAX_BODY),
                        ("/", limits.DEFAULT_MAX_BODY), ("/metrics", limits.DEFAULT_MAX_BODY),
                        ("/webhooks/gitlab", limits.WEBHOOK_MAX_BODY),
                        ("/webhooks/github", limits.WEBHOOK_MAX_BODY)]:
        answer = streaming.stream_post(f"{url}{path}", total=10 * 1024 ** 3, declare_length=True,
                                       stop_after=0, headers={"X-Gitlab-Token": SECRET})
        assert answer.status == 413, (path, answer.head)
        assert f"over {limit} bytes" in answer.head
    assert polls == []


def test_a_streamed_body_is_cut_off_just_past_the_limit(site: tuple[str, list[str]]) -> None:
    url, polls = site
    signed = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
    answer = streaming.stream_post(f"{url}/webhooks/github", total=200 * 1024 ** 2,
                                   headers=signed, chunk_size=256 * 1024)
    assert answer.status == 413, answer.head
    # Answered while the client was still sending: the server stopped reading at the limit.
    assert answer.sent < 200 * 1024 ** 2
    small = streaming.stream_post(f"{url}/api/v1/sync", total=1024 * 1024, chunk_size=16 * 1024,
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert small.status == 413, small.head
    assert polls == []


@pytest.mark.timeout(30)
def test_github_without_a_signature_is_refused_before_its_body_is_read(
        site: tuple[str, list[str]]) -> None:
    url, polls = site
    # A chunked body that never ends: only an answer given before reading it can come back.
    for given in ({}, {"X-Hub-Signature-256": "sha1=abc"}):
        answer = streaming.stream_post(f"{url}/webhooks/github", total=10 * 1024 ** 3,
                                       stop_after=1024, headers=given, timeout=10)
        assert answer.status == 401, answer.head
    assert polls == []


def test_a_signed_github_push_within_the_limit_is_accepted(site: tuple[str, list[str]]) -> None:
    url, polls = site
    body = b'{"ref": "refs/heads/main", "padding": "' + b"p" * (2 * 1024 ** 2) + b'"}'
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    accepted = requests.post(f"{url}/webhooks/github", data=iter([body[:1000], body[1000:]]),
                             headers={"X-Hub-Signature-256": signature,
                                      "X-GitHub-Event": "push"}, timeout=10)
    assert accepted.status_code == 202, accepted.text
    forged = requests.post(f"{url}/webhooks/github", data=body + b" ", timeout=10,
                           headers={"X-Hub-Signature-256": signature})
    assert forged.status_code == 401
    assert polls == ["webhook"]


def test_every_response_carries_the_security_headers(site: tuple[str, list[str]]) -> None:
    url, _ = site
    answers = [requests.get(f"{url}/", timeout=10),
               requests.get(f"{url}/api/v1/apps", timeout=10),
               requests.get(f"{url}/nowhere", timeout=10),
               requests.post(f"{url}/api/v1/sync", timeout=10),
               requests.post(f"{url}/api/v1/sync", data=b"x" * (limits.DEFAULT_MAX_BODY + 1),
                             timeout=10)]
    assert [a.status_code for a in answers] == [200, 200, 404, 401, 413]
    for answer in answers:
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Content-Security-Policy"] == headers.content_security_policy()


def test_the_csp_allows_exactly_the_inline_blocks_the_dashboard_serves(
        site: tuple[str, list[str]]) -> None:
    url, _ = site
    page = requests.get(f"{url}/drift", timeout=10)
    served = headers.inline_hashes(page.text)
    assert served["script"] and served["style"]
    policy = dict(part.split(" ", 1) for part in
                  page.headers["Content-Security-Policy"].split("; "))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert set(policy["script-src"].split()) == set(served["script"])
    assert set(policy["style-src"].split()) == set(served["style"])
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]


def test_hardening_wraps_any_app_and_keeps_its_own_headers() -> None:
    app = fastapi.FastAPI()

    @app.get("/framed")
    def framed() -> fastapi.Response:
        return fastapi.Response("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    with server.serving(web_app.harden(app)) as url:
        answer = requests.get(f"{url}/framed", timeout=10)
    assert answer.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"



@pytest.mark.timeout(30)
def test_a_webhook_refusal_closes_the_connection_instead_of_draining_the_body(
        site: tuple[str, list[str]]) -> None:
    url, polls = site
    for path, given in [("/webhooks/gitlab", {"X-Gitlab-Token": "wrong"}),
                        ("/webhooks/github", {})]:
        answer = streaming.stream_post(f"{url}{path}", total=10 * 1024 ** 3, stop_after=1024,
                                       headers=given, timeout=10)
        assert answer.status == 401, answer.head
        assert "connection: close" in answer.head.lower()
    # Far more than the 25 MiB limit, so that what socket buffers absorb after the server
    # stopped reading cannot make it look as if everything was read.
    gitlab = streaming.stream_post(f"{url}/webhooks/gitlab", total=256 * 1024 ** 2,
                                   headers={"X-Gitlab-Token": SECRET})
    assert gitlab.status == 413 and gitlab.sent < 256 * 1024 ** 2
    small = streaming.stream_post(f"{url}/webhooks/gitlab", total=100_000, chunk_size=10_000,
                                  headers={"X-Gitlab-Token": SECRET})
    assert small.status == 202, small.head
    assert polls == ["webhook"]
