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
import tracemalloc
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_apps_are_handed_over_before_the_answer_has_all_arrived(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers, "BATCH", 512)
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
    for apps in ([APPS[0], deep], [deep], [*APPS, deep, *APPS]):
        body = json.dumps({"apps": apps}, separators=(",", ":")).encode()
        with pytest.raises(answers.Nonsense, match=f"nested deeper than {answers.MAX_DEPTH}"):
            list(answers.apps_of([body]))
        with pytest.raises(answers.Nonsense, match=f"nested deeper than {answers.MAX_DEPTH}"):
            list(answers.apps_of([json.dumps({"apps": apps}, indent=1).encode()]))


def marathon_answer(apps: list[Any]) -> bytes:
    """As Marathon writes it: compact, each app's ``id`` first (AppsResource.index ->
    raml.AppList; the App type of docs/docs/rest-api/public/api/v2/types/app.raml)."""
    return json.dumps({"apps": apps}, separators=(",", ":")).encode()


def test_marathon_answers_are_cut_between_apps_never_parsed_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def whole(*_: Any) -> Iterator[Any]:
        raise AssertionError("an answer as Marathon writes it was parsed whole")

    monkeypatch.setattr(answers, "_whole", whole)
    monkeypatch.setattr(answers, "BATCH", 300)
    for size in (1, 100, 1 << 20):
        assert list(answers.apps_of(pieces(marathon_answer(APPS), size))) == APPS
    assert list(answers.apps_of([b'{"apps":[]}'])) == []


def test_a_cut_inside_an_app_is_found_out_and_the_apps_come_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrays of objects whose first key is an absolute "id": every one makes a cut that is
    # not between apps. A few are retried at the next cut, many send the rest to be parsed
    # whole.
    monkeypatch.setattr(answers, "BATCH", 64)
    for nested in (2, answers.MISCUTS * 4):
        apps = [{**app, "x": [{"id": f"/n{j}", "v": "},{\"id\":\"/"} for j in range(nested)]}
                for app in APPS]
        assert list(answers.apps_of(pieces(marathon_answer(apps), 50))) == apps


def test_an_answer_with_more_than_apps_or_cut_short_is_still_read_right() -> None:
    body = marathon_answer(APPS)
    more = body[:-1] + b',"extra":{"a":[1]}}'
    assert list(answers.apps_of([more])) == APPS
    for cut in (len(body) - 1, len(body) - 2, len(body) // 2):
        with pytest.raises(answers.Nonsense, match="not JSON"):
            list(answers.apps_of([body[:cut]]))


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


_TRICKY = st.text(alphabet='[]{}"\\/,:u0a é', max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY, inner, max_size=3),
    max_leaves=40)


@given(value=_JSON, limit=st.integers(min_value=0, max_value=12),
       ascii_only=st.booleans())
def test_the_depth_judged_on_bytes_is_the_depth_of_the_parsed_value(
        value: Any, limit: int, ascii_only: bool) -> None:
    for text in (json.dumps(value, ensure_ascii=ascii_only),
                 json.dumps(value, indent=2, ensure_ascii=ascii_only)):
        assert answers.nesting_at_most(text.encode(), limit) is (_depth(value) <= limit)


@pytest.mark.parametrize("body", [
    b'{"apps":[' + b"[" * 20_000,                                   # cut short
    b'{"apps":[' + b"[" * 20_000 + b"]" * 20_000 + b'],"x":1}',    # more keys
    b'{"apps":[{"id":"/a"},' + b'{"x":' * 20_000 + b"1" + b"}" * 20_000 + b"]}",
])
def test_a_deep_answer_off_the_batches_is_refused_before_it_is_parsed(body: bytes) -> None:
    # Before, such answers went token by token through ijson: 20,000 levels took 1 GB.
    tracemalloc.start()
    try:
        with pytest.raises(answers.Nonsense, match="nested deeper than|not JSON"):
            list(answers.apps_of(pieces(body, 4096)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * len(body)


@pytest.mark.parametrize("body", [
    b'\x0b{"apps":[]}', b'{"apps":[]}\x0c',                             # not JSON's whitespace
    b'{"apps":[{"id":"/a","s":"\\ud800"}]}',                          # a lone surrogate
    b'{"apps":[{"id":"/a","env":{"DB_PASSWORD":"hunter2"}}]} x',     # trailing garbage
])
def test_what_orjson_refuses_is_refused_without_quoting_the_answer(body: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)
    with pytest.raises(answers.Nonsense) as refused:
        list(answers.apps_of([body]))
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("body", [
    b'{"apps":[{"id":"/a"}],"apps":[{"id":"/b"}]}',
    b'{"apps":[{"id":"/a","n":100000000000000000000}],"x":1}',
    b' {"apps":[{"id":"/a"},{"id":"/b"}]}\n',
])
def test_an_answer_off_the_batches_reads_as_orjson_reads_it(body: bytes) -> None:
    assert list(answers.apps_of([body])) == orjson.loads(body)["apps"]
