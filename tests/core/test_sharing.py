"""Equal JSON values held once (``reconciler/core/sharing.py``)."""

from __future__ import annotations

import datetime as dt

from reconciler.core import sharing


def test_equal_json_values_become_the_first_one_and_only_equal_json_does() -> None:
    shared = sharing.Shared()
    first = shared.top_level({"env": {"A": "1"}, "args": ["x"], "cpus": 0.1, "labels": {}})
    second = shared.top_level({"env": {"A": "1"}, "args": ["y"], "cpus": 0.1, "labels": {}})
    assert second["env"] is first["env"]
    assert second["args"] == ["y"] and second["args"] is not first["args"]
    assert second["labels"] is not first["labels"]  # empty: nothing to gain, left alone
    # Equal for Python, other JSON: 1 and 1.0, or keys in another order, stay apart.
    ints = shared.top_level({"strategy": {"min": 1, "over": 0}})
    floats = shared.top_level({"strategy": {"min": 1.0, "over": 0}})
    reordered = shared.top_level({"strategy": {"over": 0, "min": 1}})
    assert ints["strategy"] is not floats["strategy"]
    assert isinstance(floats["strategy"]["min"], float)
    assert list(reordered["strategy"]) == ["over", "min"]


def test_a_value_that_is_not_plain_json_is_kept_as_it_is() -> None:
    shared = sharing.Shared()
    odd = {"tags": {"a", "b"}, "big": [2**70]}
    assert shared.top_level(dict(odd)) == odd


def test_values_with_the_same_json_text_but_not_equal_stay_apart() -> None:
    # orjson writes a date as its text and NaN as null: sharing on the text alone would
    # give one file's value to another (a review found both).
    shared = sharing.Shared()
    text = shared.top_level({"env": {"D": "2024-01-01"}, "labels": {"x": None}})
    date = shared.top_level({"env": {"D": dt.date(2024, 1, 1)}, "labels": {"x": float("nan")}})
    assert date["env"] == {"D": dt.date(2024, 1, 1)} and date["env"] is not text["env"]
    assert date["labels"]["x"] != date["labels"]["x"]  # still NaN, not the other's null
