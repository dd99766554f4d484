"""The registry client against a real Distribution registry: tags across pages, digests,
anonymous, basic and bearer-token access, and every failure a clear error with a reason
that never holds the password."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from reconciler.shell import registry
from reconciler.shell.ports import free_port
from testbed import registries

pytestmark = pytest.mark.integration

CREDENTIALS = registry.Credentials(username=registries.USER, password=registries.PASSWORD)


@pytest.fixture(scope="module")
def anonymous() -> Iterator[registries.Registry]:
    with registries.running_registry() as server:
        yield server


@pytest.fixture(scope="module")
def basic() -> Iterator[registries.Registry]:
    with registries.running_registry(auth="htpasswd") as server:
        yield server


@pytest.fixture(scope="module")
def token() -> Iterator[registries.Registry]:
    with registries.running_registry(auth="token") as server:
        yield server


def test_tags_and_digests_anonymously(anonymous: registries.Registry) -> None:
    pushed = {tag: anonymous.push("lhcb/lhcbdirac", tag)
              for tag in ("v8r2p44", "v8r2p45", "v8r3-pre1")}
    client = registry.Client(anonymous.url)
    assert sorted(client.tags("lhcb/lhcbdirac")) == sorted(pushed)
    assert client.digest("lhcb/lhcbdirac", "v8r2p45") == pushed["v8r2p45"]


@contextlib.contextmanager
def paging_front(upstream: str, *, page: int) -> Iterator[str]:
    """A front for the real registry that pages ``tags/list`` with ``Link`` headers, as
    Distribution 3, Harbor and GitLab do (Debian's 2.8 returns every tag at once)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            name = path.removeprefix("/v2/").removesuffix("/tags/list")
            every = sorted(requests.get(f"{upstream}{path}", timeout=10).json()["tags"])
            last = urllib.parse.parse_qs(query).get("last", [""])[0]
            rest = [t for t in every if t > last]
            body = json.dumps({"name": name, "tags": rest[:page]}).encode()
            self.send_response(200)
            if len(rest) > page:
                self.send_header("Link", f'</v2/{name}/tags/list?last={rest[page - 1]}'
                                         f'&n={page}>; rel="next"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tags_follow_link_pagination(anonymous: registries.Registry) -> None:
    tags = [f"v8r2p{n}" for n in range(1, 8)]
    for tag in tags:
        anonymous.push("lhcb/paged", tag)
    with paging_front(anonymous.url, page=3) as front:
        first = requests.get(f"{front}/v2/lhcb/paged/tags/list", timeout=10)
        assert len(first.json()["tags"]) == 3 and 'rel="next"' in first.headers["Link"]
        assert sorted(registry.Client(front).tags("lhcb/paged")) == sorted(tags)


def test_unknown_repository_and_tag_are_not_found(anonymous: registries.Registry) -> None:
    anonymous.push("lhcb/known", "v1r0")
    client = registry.Client(anonymous.url)
    with pytest.raises(registry.NotFound, match="lhcb/nothing-here tags: not found"):
        client.tags("lhcb/nothing-here")
    with pytest.raises(registry.NotFound, match="lhcb/known:v9r9: not found"):
        client.digest("lhcb/known", "v9r9")


def test_oversized_answers_are_refused_before_parsing(anonymous: registries.Registry) -> None:
    for n in range(40):
        anonymous.push("lhcb/big", f"v1r{n}")
    with pytest.raises(registry.RegistryUnavailable, match="byte limit"):
        registry.Client(anonymous.url, max_bytes=100).tags("lhcb/big")


def test_basic_auth(basic: registries.Registry) -> None:
    digest = basic.push("lhcb/lhcbdirac", "v8r2p46")
    client = registry.Client(basic.url, credentials=CREDENTIALS)
    assert client.tags("lhcb/lhcbdirac") == ("v8r2p46",)
    assert client.digest("lhcb/lhcbdirac", "v8r2p46") == digest


def test_basic_auth_refused_says_so_without_the_password(basic: registries.Registry) -> None:
    basic.push("lhcb/lhcbdirac", "v8r2p46")
    wrong = registry.Credentials(username=registries.USER, password="not-the-password")
    with pytest.raises(registry.AuthRefused, match="access refused \\(401\\) with credentials"
                       ) as caught:
        registry.Client(basic.url, credentials=wrong).tags("lhcb/lhcbdirac")
    assert "not-the-password" not in str(caught.value)
    with pytest.raises(registry.AuthRefused, match="none are configured"):
        registry.Client(basic.url).tags("lhcb/lhcbdirac")
    assert "not-the-password" not in repr(wrong)


def test_bearer_token_flow(token: registries.Registry) -> None:
    digest = token.push("lhcb/lhcbdirac", "v8r2p46")
    client = registry.Client(token.url, credentials=CREDENTIALS)
    assert token.tokens is not None
    asked = token.tokens.requests
    assert client.tags("lhcb/lhcbdirac") == ("v8r2p46",)
    assert client.digest("lhcb/lhcbdirac", "v8r2p46") == digest
    assert token.tokens.requests == asked + 1  # one token, reused for the same scope


def test_bearer_token_refused(token: registries.Registry) -> None:
    with pytest.raises(registry.AuthRefused, match="token server refused \\(401\\)"):
        registry.Client(token.url).tags("lhcb/lhcbdirac")


def test_a_registry_that_is_down_is_unavailable_not_a_crash() -> None:
    client = registry.Client(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(registry.RegistryUnavailable, match="unreachable \\(ConnectionError\\)"):
        client.tags("lhcb/lhcbdirac")


def test_auth_file_in_docker_config_form(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {
        "https://registry.example.org/": {"auth": "dTpwOng="},
        "127.0.0.1:5000": {"username": "v", "password": "q"}}}))
    assert registry.read_auth_file(path) == {
        "registry.example.org": registry.Credentials(username="u", password="p:x"),
        "127.0.0.1:5000": registry.Credentials(username="v", password="q")}
    path.write_text('{"auths": {"r": {"auth": "!!"}}}')
    with pytest.raises(registry.AuthRefused, match="unreadable"):
        registry.read_auth_file(path)
