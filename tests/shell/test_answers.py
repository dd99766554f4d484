"""Marathon's answers read bounded and app by app (``reconciler/shell/answers.py``).

Marathon writes ``GET /v2/apps`` as ``{"apps":[...]}``: ``AppsResource.index`` answers
``ok(raml.AppList(mapped))``, written by ``RestResource.RestStreamingBody`` with Jackson
(``RamlSerializer.serializer``), compact (src/main/scala/mesosphere/marathon/api/v2/
AppsResource.scala, api/RestResource.scala). So the streamed path is the one production
takes; anything else is read whole and checked.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.shell import answers, marathon
from tests.shell import servers
from tests.shell.servers import Reply

APPS = [{"id": f"/dirac/app{i}", "cpus": 0.1, "mem": 128, "instances": i,
         "env": {"A": "b" * i}} for i in range(50)]


@pytest.fixture
def server() -> Any:
    with servers.serve() as scripted:
        yield scripted


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_apps_arrive_whole_and_typed_however_the_answer_is_cut(size: int) -> None:
    body = json.dumps({"apps": APPS}, separators=(",", ":")).encode()
    assert list(answers.apps_of(pieces(body, size))) == APPS
    first = next(iter(answers.apps_of(pieces(body, size))))
    assert isinstance(first["cpus"], float) and isinstance(first["mem"], int)


def test_apps_are_handed_over_before_the_answer_has_all_arrived() -> None:
    body = json.dumps({"apps": APPS}, separators=(",", ":")).encode()
    sent: list[int] = []

    def slowly() -> Iterator[bytes]:
        for number, piece in enumerate(pieces(body, 256)):
            sent.append(number)
            yield piece

    apps = answers.apps_of(slowly())
    next(apps)
    assert len(sent) < len(pieces(body, 256)) / 2


def test_an_answer_over_the_byte_limit_is_refused_while_reading() -> None:
    endless = itertools.repeat(b" " * 1000)
    with pytest.raises(answers.Unreadable, match="over the 100000 byte limit"):
        list(answers.apps_of(itertools.chain([b'{"apps":['], endless), max_bytes=100_000))


def test_a_declared_length_over_the_limit_is_refused_before_any_read() -> None:
    def never() -> Iterator[bytes]:
        raise AssertionError("read although the declared length was over the limit")
        yield b""

    with pytest.raises(answers.Unreadable, match="999999 bytes, over the 1000 byte limit"):
        answers.json_of(never(), declared="999999", max_bytes=1000)


def test_an_answer_that_dribbles_past_the_time_limit_is_refused() -> None:
    now = iter(range(0, 10_000, 10))
    with pytest.raises(answers.Unreadable, match="took over 25 s"):
        answers.json_of(itertools.repeat(b" "), max_seconds=25, clock=lambda: float(next(now)))


@pytest.mark.parametrize(("body", "message"), [
    (b'{"message":"Not found","details":[]}', "expected an object with 'apps', got an object "
                                               "with 'message', 'details'"),
    (b'{"apps": 3}', "expected a list of apps, got a int"),
    (b"<html>proxy</html>", "not JSON"),
    (b'{"apps":[{"id":"/a"},{"id":', "not JSON"),
])
def test_nonsense_is_named_never_taken_for_no_apps(body: bytes, message: str) -> None:
    with pytest.raises(answers.Nonsense, match=message):
        list(answers.apps_of([body]))


def test_the_client_lists_apps_streamed_and_refuses_an_endless_answer(
        server: servers.ScriptedMarathon, monkeypatch: pytest.MonkeyPatch) -> None:
    client = marathon.MarathonClient(marathon.ClientSettings(urls=(server.url,), timeout=5))
    server.on("GET", "/v2/apps", Reply(body={"apps": APPS}))
    assert client.list_apps() == APPS

    monkeypatch.setattr(answers, "MAX_BYTES", 64 * 1024)
    server.on("GET", "/v2/apps", Reply(body=b'{"apps":[' + b'{"id":"/x"},' * 20_000 + b"]}"))
    with pytest.raises(marathon.MarathonUnavailable, match="over the 65536 byte limit"):
        client.list_apps()
    server.on("GET", "/v2/apps", Reply(body={"message": "no"}))
    with pytest.raises(marathon.MarathonError, match="answered nonsense: expected an object "
                                                     "with 'apps'"):
        client.list_apps()


def test_an_app_nested_too_deep_is_nonsense_before_anyone_walks_it() -> None:
    deep: dict[str, object] = {"id": "/deep"}
    inner = deep
    for _ in range(answers.MAX_DEPTH + 5):
        inner["x"] = {}
        inner = inner["x"]  # type: ignore[assignment]
    body = json.dumps({"apps": [APPS[0], deep]}, separators=(",", ":")).encode()
    apps = answers.apps_of([body])
    assert next(apps) == APPS[0]
    with pytest.raises(answers.Nonsense, match=f"nested deeper than {answers.MAX_DEPTH}"):
        next(apps)
