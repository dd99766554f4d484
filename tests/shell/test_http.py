"""Plain HTTP (webhooks, the demo's probes): typed errors that never repeat the URL, against
real servers (the scripted one of the Marathon client tests, and a closed port)."""

from __future__ import annotations

import pytest

from reconciler.shell import http
from tests.shell import servers
from tests.shell.servers import Reply


def test_a_json_document_is_read_and_a_json_body_posted() -> None:
    with servers.serve() as server:
        server.on("GET", "/api/v1/status", Reply(body={"revision": "abc"}))
        server.on("POST", "/hooks/t0ken", Reply(body={}))
        assert http.get_json(f"{server.url}/api/v1/status", timeout=5) == {"revision": "abc"}
        http.post_json(f"{server.url}/hooks/t0ken", b'{"text": "hi"}', timeout=5)
        [posted] = server.requests("POST", "/hooks/t0ken")
    assert posted.body == {"text": "hi"}
    assert posted.headers["content-type"] == "application/json"


def test_an_http_error_is_refused_with_its_status_and_answers_is_false() -> None:
    with servers.serve() as server:
        server.on("POST", "/hooks/t0ken", Reply(403, {"message": "no"}))
        server.on("GET", "/healthz", Reply(503, {"alive": False}))
        with pytest.raises(http.Refused) as refused:
            http.post_json(f"{server.url}/hooks/t0ken", b"{}", timeout=5)
        assert not http.answers(f"{server.url}/healthz")
    assert refused.value.status == 403 and "t0ken" not in str(refused.value)


def test_no_server_is_unreachable_without_the_url_in_the_message() -> None:
    url = f"{servers.closed_port_url()}/hooks/t0ken"
    with pytest.raises(http.Unreachable, match="refused") as unreachable:
        http.post_json(url, b"{}", timeout=5)
    assert "t0ken" not in str(unreachable.value)
    assert not http.answers(url)


def test_an_answer_that_is_not_json_is_an_http_error() -> None:
    with servers.serve() as server:
        server.on("GET", "/api/v1/status", Reply(body=b"<html>"))
        with pytest.raises(http.HttpError, match="not JSON"):
            http.get_json(f"{server.url}/api/v1/status", timeout=5)


def test_a_bounded_answer_larger_than_its_bound_is_refused() -> None:
    with servers.serve() as server:
        server.on("GET", "/keys", Reply(body=b'{"keys": []}' + b" " * 5000))
        assert http.get_json(f"{server.url}/keys", timeout=5, max_bytes=10_000) == {"keys": []}
        with pytest.raises(http.HttpError, match="larger than 1000 bytes"):
            http.get_json(f"{server.url}/keys", timeout=5, max_bytes=1000)
