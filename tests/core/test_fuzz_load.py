"""Property-based fuzzing of loading and validation: whatever a repo holds, ``load`` either
gives a desired state or raises InvalidDesiredState whose problems name a file of the repo (and
a line inside it when one is given); never another exception, never a hang.

Short in the normal suite (``FUZZ_EXAMPLES``, 200 per property). To fuzz for long, e.g. a
night::

    FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest -p no:xdist --timeout 0 \\
        tests/core/test_fuzz_load.py --hypothesis-show-statistics

A failure prints the smallest repo found and ``@reproduce_failure`` to replay it.
"""

from __future__ import annotations

import importlib.resources
import json
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.core import load as loading
from reconciler.core import model
from tests.core import repo

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")), deadline=None,
                database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
APP_PATH = "dirac-cert/configuration/server.yaml"

_SCHEMA = json.loads(importlib.resources.files("reconciler").joinpath(
    "schemas", "app.schema.json").read_text())
FIELDS = sorted(_SCHEMA["properties"])
"""Real field names, so that generated apps get past "unknown field" into deeper checks."""
NESTED = ["docker", "image", "portMappings", "name", "containerPort", "hostPort", "protocol",
          "portIndex", "mode", "type", "secret", "source", "command", "value", "path", "port",
          "minimumHealthCapacity", "maximumOverCapacity", "network", "volumes", "parameters"]

YAML_PIECES = ["\n", " ", "  ", "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "!!str ",
               "!!python/name:os.system ", "? ", "|\n", ">\n", "'", '"', "#", "---\n", "...\n",
               "%YAML 1.1\n", "~", "null", "true", "1e9", ".nan", "-.inf", "0x1F", "0o17",
               "2001-12-14", "2001-13-45", "12:30:00", "9" * 30, "\t", "\\u0000", "\x00",
               "\ufeff", "\x85", "é", "🙂", *FIELDS[:12], "instances", "cpus", "mem"]


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    keys = st.sampled_from(FIELDS + NESTED) | st.text(max_size=10)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(keys, inner, max_size=6), max_leaves=30)


app_shaped = st.dictionaries(st.sampled_from(FIELDS), json_values(), max_size=10)


def check(files: dict[str, str | None]) -> None:
    sources = repo.with_files(files)
    known = {f.path: f.text for f in sources}
    try:
        loading.load_desired_state(sources, revision="fuzz")
    except model.InvalidDesiredState as e:
        assert e.problems
        for problem in e.problems:
            assert problem.path in known, problem
            assert problem.message, problem
            if problem.line is not None:
                assert 1 <= problem.line <= known[problem.path].count("\n") + 2, problem


@pytest.mark.timeout(300)
@FUZZ
@given(text=st.text(max_size=300), as_json=st.booleans())
def test_any_text_as_a_file(text: str, as_json: bool) -> None:
    check({"dirac-cert/web/portal.json" if as_json else APP_PATH: text})


@pytest.mark.timeout(300)
@FUZZ
@given(pieces=st.lists(st.sampled_from(YAML_PIECES), max_size=60))
def test_yaml_like_text_as_a_file(pieces: list[str]) -> None:
    check({APP_PATH: "".join(pieces)})


@pytest.mark.timeout(300)
@FUZZ
@given(app=app_shaped, as_json=st.booleans())
def test_app_shaped_structures(app: dict[str, Any], as_json: bool) -> None:
    if as_json:
        text = json.dumps(app, allow_nan=True)
        check({APP_PATH: None, "dirac-cert/configuration/server.json": text})
    else:
        check({APP_PATH: yaml.safe_dump(app, allow_unicode=True)})


@pytest.mark.timeout(300)
@FUZZ
@given(base=st.just(repo.APP), changes=st.dictionaries(
    st.sampled_from(FIELDS), json_values(), min_size=1, max_size=3))
def test_a_valid_app_with_a_few_fields_replaced(base: str, changes: dict[str, Any]) -> None:
    app = {**yaml.safe_load(base), **changes}
    check({APP_PATH: yaml.safe_dump(app, allow_unicode=True)})


@pytest.mark.timeout(300)
@FUZZ
@given(images=json_values(), settings_data=json_values())
def test_images_and_settings_files(images: Any, settings_data: Any) -> None:
    check({"images.yaml": yaml.safe_dump(images, allow_unicode=True),
           "reconciler.json": json.dumps(settings_data), "reconciler.yaml": None})
