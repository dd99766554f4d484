"""Golden files: what users write (``*-desired.yaml``) against what Marathon returns for it
(``*-live.json``) must show no difference at all after normalization.

A ``*-live.json`` is either a live app we wrote in Marathon 1.10's response form, or a
reference ``{"$reference": "examples/<file>", "pointer": "/..."}`` into Marathon's own API
examples (shared/marathon-reference, not copied here). ``*-normalized.json`` pins the
canonical form of the live side; regenerate with ``UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonpointer
import pytest
import yaml

from reconciler.core import diff as diffing
from reconciler.core import model
from reconciler.core import normalize as normalizing

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name.removesuffix("-desired.yaml") for p in GOLDEN.glob("*-desired.yaml"))


def desired_of(case: str) -> model.JSON:
    data: model.JSON = yaml.safe_load((GOLDEN / f"{case}-desired.yaml").read_text())
    return data


def live_of(case: str, reference: Path) -> model.JSON:
    data: model.JSON = json.loads((GOLDEN / f"{case}-live.json").read_text())
    if "$reference" in data:
        document = json.loads((reference / data["$reference"]).read_text())
        resolved: model.JSON = jsonpointer.resolve_pointer(document, data["pointer"])
        return resolved
    return data


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 6


@pytest.mark.parametrize("case", CASES)
def test_desired_as_written_shows_no_difference_to_its_live_twin(
        case: str, marathon_reference: Path) -> None:
    desired = desired_of(case)
    live = live_of(case, marathon_reference)
    app = model.DesiredApp(app_id=desired["id"], definition=desired, source_path=case)
    result = diffing.diff_app(app, live)
    assert result.changes == ()
    assert result.patch == ()
    assert result.action is model.Action.NOOP


@pytest.mark.parametrize("case", CASES)
def test_live_normalizes_to_its_golden_canonical_form(case: str, marathon_reference: Path
                                                      ) -> None:
    normalized = normalizing.normalize_app(live_of(case, marathon_reference))
    golden = GOLDEN / f"{case}-normalized.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(normalized, indent=2, sort_keys=True) + "\n")
    assert normalized == json.loads(golden.read_text())


@pytest.mark.parametrize("case", CASES)
def test_normalizing_never_changes_its_argument(case: str, marathon_reference: Path) -> None:
    for app in (desired_of(case), live_of(case, marathon_reference)):
        before = json.dumps(app, sort_keys=True)
        normalizing.normalize_app(app, ignore=("/instances", "/container/docker/image"))
        assert json.dumps(app, sort_keys=True) == before


def test_every_top_level_default_is_proven_by_a_golden_case(marathon_reference: Path) -> None:
    """Each default Marathon fills in is left out on the desired side and present live."""
    proven: set[str] = set()
    for case in CASES:
        desired, live = desired_of(case), live_of(case, marathon_reference)
        proven |= {k for k in live if k not in desired}
    assert set(normalizing.APP_DEFAULTS) - proven == set()


def _nested_defaults_proven(path: tuple[str, ...], defaults: dict[str, Any],
                            marathon_reference: Path) -> set[str]:
    proven: set[str] = set()
    for case in CASES:
        live = normalizing.drop_server_fields(live_of(case, marathon_reference))
        desired = desired_of(case)
        for key in defaults:
            for live_item, desired_item in _pairs(live, desired, path):
                if key in live_item and key not in desired_item:
                    proven.add(key)
    return proven


def _pairs(live: Any, desired: Any, path: tuple[str, ...]) -> list[tuple[Any, Any]]:
    if not path:
        return [(live, desired)] if isinstance(live, dict) and isinstance(desired, dict) else []
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(live, list) or not isinstance(desired, list):
            return []
        # Sets may come in another order: pair items that agree on their identity fields.
        pairs = []
        for d in desired:
            for lv in live:
                if all(lv.get(k) == v for k, v in d.items() if not isinstance(v, dict)):
                    pairs.extend(_pairs(lv, d, rest))
        return pairs
    if not isinstance(live, dict) or not isinstance(desired, dict):
        return []
    # A desired object left out entirely takes every default of it.
    default: Any = {} if isinstance(live.get(head), dict) else None
    return _pairs(live.get(head), desired.get(head, default), rest)


@pytest.mark.parametrize(("path", "defaults"), [
    (("healthChecks", "*"), normalizing.HEALTH_CHECK_DEFAULTS),
    (("container", "docker"), normalizing.DOCKER_DEFAULTS),
    (("container", "portMappings", "*"), normalizing.PORT_MAPPING_DEFAULTS),
    (("readinessChecks", "*"), normalizing.READINESS_CHECK_DEFAULTS),
    (("fetch", "*"), normalizing.FETCH_DEFAULTS),
    (("upgradeStrategy",), normalizing.UPGRADE_STRATEGY_DEFAULTS),
])
def test_every_nested_default_is_proven_by_a_golden_case(
        path: tuple[str, ...], defaults: dict[str, Any], marathon_reference: Path) -> None:
    proven = _nested_defaults_proven(path, defaults, marathon_reference)
    assert set(defaults) - proven == set()
