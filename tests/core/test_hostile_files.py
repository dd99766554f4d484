"""Hostile config files: the loader refuses them with ``path:line: message`` before they cost
more than their size (alias bombs, deep nesting, control characters, huge files)."""

from __future__ import annotations

import time

import pytest

from reconciler.core import load as loading
from reconciler.core import model, parse
from tests.core import repo

APP_PATH = "dirac-cert/configuration/server.yaml"

ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(ord('a') + i + 1)}: &{chr(ord('a') + i + 1)} [" + ",".join(
        [f"*{chr(ord('a') + i)}"] * 9) + "]" for i in range(8)]) + "\n"
"""The classic "billion laughs": nine levels of nine aliases, under 500 bytes."""


def problems_of(files: dict[str, str | None]) -> tuple[model.Problem, ...]:
    with pytest.raises(model.InvalidDesiredState) as caught:
        loading.load_desired_state(repo.with_files(files), revision="r1")
    return caught.value.problems


def test_the_alias_bomb_is_small_and_refused_at_its_first_anchor_at_once() -> None:
    assert len(ALIAS_BOMB.encode()) < 500
    started = time.monotonic()
    problems = problems_of({APP_PATH: ALIAS_BOMB})
    assert time.monotonic() - started < 2
    assert [(p.path, p.line) for p in problems] == [(APP_PATH, 1)]
    assert "anchors and aliases" in problems[0].message
    assert str(problems[0]).startswith(f"{APP_PATH}:1: ")


@pytest.mark.parametrize("text, line", [
    ("instances: 1\nlabels: &common {team: lhcb}\n", 2),
    ("base: {cpus: 1}\nother:\n  <<: *base\n", 3),
])
def test_any_anchor_or_alias_is_refused_on_its_line(text: str, line: int) -> None:
    problems = problems_of({APP_PATH: text})
    assert [(p.path, p.line) for p in problems] == [(APP_PATH, line)]
    assert "not allowed" in problems[0].message


@pytest.mark.parametrize("path, text", [
    (APP_PATH, "[" * 100_000),
    (APP_PATH, "- " * 100_000 + "1\n"),
    (APP_PATH, "{a: " * 100_000),
    ("dirac-cert/web/portal.json", '{"a": ' * 100_000 + "1" + "}" * 100_000),
    ("dirac-cert/web/portal.json", "[" * 100_000 + "]" * 100_000),
])
def test_deep_nesting_is_a_located_error_not_a_recursion_error(path: str, text: str) -> None:
    problems = problems_of({path: text})
    assert len(problems) == 1 and problems[0].path == path
    assert problems[0].line == 1
    assert "nest" in problems[0].message


def test_nesting_up_to_the_limit_parses() -> None:
    depth = parse.MAX_DEPTH
    parsed = parse.parse(model.SourceFile("deep.json", "[" * depth + "]" * depth))
    assert parsed.data is not None
    with pytest.raises(parse.ParseError, match="nested deeper than"):
        parse.parse(model.SourceFile("deep.json", "[" * (depth + 1) + "]" * (depth + 1)))


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f", "\x0c", "\x85",
                                       "\u2028", "\r "])
def test_control_characters_are_refused_on_their_line(character: str) -> None:
    text = repo.APP.replace("mem: 128", f"mem: 128{character}")
    problems = problems_of({APP_PATH: text})
    assert [(p.path, p.line) for p in problems] == [(APP_PATH, 3)]
    assert "control character" in problems[0].message


@pytest.mark.parametrize("path", [APP_PATH, "dirac-cert/web/portal.json"])
def test_a_file_over_the_size_limit_is_refused_unparsed(path: str) -> None:
    text = '{"instances": 1, "labels": {"a": "' + "x" * parse.MAX_FILE_BYTES + '"}}'
    problems = problems_of({path: text})
    assert [p.path for p in problems] == [path]
    assert "too large" in problems[0].message


def test_a_value_that_does_not_fit_its_type_is_a_problem_not_a_value_error() -> None:
    # The timestamp resolver takes 2001-13-45 and datetime refuses it with ValueError.
    for text in ("instances: 1\nlabels: {built: 2001-13-45}\n", "instances: " + "9" * 5000):
        problems = problems_of({APP_PATH: text})
        assert [p.path for p in problems] == [APP_PATH]
        assert "invalid YAML" in problems[0].message


def test_the_c_loader_is_used_where_pyyaml_has_it() -> None:
    import yaml

    if yaml.__with_libyaml__:
        assert parse.LOADER is yaml.CSafeLoader
    else:
        assert parse.LOADER is yaml.SafeLoader


def test_a_repo_over_the_total_size_limit_is_refused_from_the_file_that_crosses_it() -> None:
    filler = "instances: 1\nlabels: {a: '" + "x" * (parse.MAX_FILE_BYTES - 100) + "'}\n"
    count = parse.MAX_REPO_BYTES // len(filler) + 1
    files = {f"dirac-cert/bulk/app{i:03}.yaml": filler for i in range(count)}
    problems = problems_of(files)
    crossing = [p for p in problems if "in total" in p.message]
    # Sorted by path: the bulk apps come first, the files after them are not read either.
    assert crossing[0].path == f"dirac-cert/bulk/app{count - 1:03}.yaml"
    assert {p.path for p in crossing[1:]} == {
        "dirac-cert/configuration/server.yaml", "images.yaml", "reconciler.yaml"}


# Marathon's own rules, in src/main/scala/mesosphere/marathon/state/AppDefinition.scala
# (mesosphere/marathon@90619da7, `validAppDefinition`): `instances should be >= 0`,
# `resources.mem/cpus/disk as ... should be >= 0.0`, `gpus should be >= 0`, where instances
# and gpus are Scala `Int` (int32) and the resources `Double`s that must compare, which NaN
# never does; docs/docs/rest-api/public/api/v2/types/app.raml gives instances, gpus,
# backoffSeconds, maxLaunchDelaySeconds, taskKillGracePeriodSeconds `format: int32`,
# cpus `minimum: 0.001`, and JSON itself has no NaN or Infinity.
@pytest.mark.parametrize("field, value, message", [
    ("instances", "1.0e+32", "is greater than the maximum of 2147483647"),
    ("instances", "2147483648", "is greater than the maximum of 2147483647"),
    ("instances", "-1", "is less than the minimum of 0"),
    ("gpus", "1.0e+10", "is greater than the maximum of 2147483647"),
    ("cpus", ".nan", "nan is not a finite number"),
    ("cpus", ".inf", "inf is not a finite number"),
    ("mem", ".inf", "inf is not a finite number"),
    ("mem", "-.inf", "-inf is not a finite number"),
    ("disk", ".NaN", "nan is not a finite number"),
    ("backoffFactor", ".inf", "inf is not a finite number"),
    ("taskKillGracePeriodSeconds", "99999999999", "is greater than the maximum"),
])
def test_values_marathon_would_never_accept_are_refused_on_their_line(
        field: str, value: str, message: str) -> None:
    text = "\n".join(line for line in repo.APP.splitlines()
                     if not line.startswith(f"{field}:")) + f"\n{field}: {value}\n"
    problems = problems_of({APP_PATH: text})
    line = text.splitlines().index(f"{field}: {value}") + 1
    assert {(p.path, p.line) for p in problems} == {(APP_PATH, line)}
    assert any(p.message.startswith(f"/{field}: ") and message in p.message for p in problems)


def test_a_non_finite_number_is_refused_anywhere_in_any_file() -> None:
    problems = problems_of({
        "reconciler.yaml": "managedPrefixes: [/dirac-cert]\n",
        APP_PATH: repo.APP + "upgradeStrategy: {minimumHealthCapacity: .nan}\n",
        "dirac-cert/web/portal.json": '{"instances": 1, "cpus": 1e400}',
    })
    found = {(p.path, p.message) for p in problems}
    assert (APP_PATH, "/upgradeStrategy/minimumHealthCapacity: nan is not a finite number") in (
        found)
    # JSON's 1e400 is read as a YAML string here, which the schema refuses as not a number.
    assert any(p.path == "dirac-cert/web/portal.json" and "/cpus" in p.message
               for p in problems)


@pytest.mark.parametrize("text, line", [
    ("instances: 1\nenv:\n  NO: x\n", 3),        # YAML 1.1 reads the key as false
    ("instances: 1\nlabels: {1: x}\n", 2),
    ("? \n", 1),                                   # found by the fuzzer: a null key
])
def test_a_key_that_is_not_a_string_is_refused_on_its_line(text: str, line: int) -> None:
    problems = problems_of({APP_PATH: text})
    assert [(p.path, p.line) for p in problems] == [(APP_PATH, line)]
    assert "is not a string: quote it" in problems[0].message


@pytest.mark.parametrize("value, kind", [
    ("{D: 2024-01-01}", "timestamp"),
    ("{D: 2001-12-14t21:59:43.10-05:00}", "timestamp"),
    ("{D: !!binary aGVsbG8=}", "binary"),
    ("!!set {a, b}", "set"),
])
def test_a_yaml_value_json_has_no_type_for_is_a_located_problem_not_a_crash(
    value: str, kind: str,
) -> None:
    # These crashed the schema check (an unsupported type) before: nothing in the file says
    # so, and JSON, the only thing Marathon reads, has no date, binary or set.
    problems = problems_of({APP_PATH: repo.APP + f"env: {value}\n"})
    assert [(p.path, p.line) for p in problems] == [(APP_PATH, 14)]
    assert f"YAML {kind}" in problems[0].message and "quote it" in problems[0].message


def test_the_same_text_quoted_is_a_string() -> None:
    desired = loading.load_desired_state(
        repo.with_files({APP_PATH: repo.APP + "env: {D: '2024-01-01'}\n"}), revision="r1")
    assert desired.apps["/dirac-cert/configuration/server"].definition["env"] == {
        "D": "2024-01-01"}
