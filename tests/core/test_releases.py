"""A release's overall outcome from its apps', and the images it moved (pure, table-tested)."""

from __future__ import annotations

import collections

import pytest

from reconciler.core import model, promotion, releases, retag
from reconciler.core.releases import ReleaseOutcome as R

OK, RB, FAIL, TIMEOUT, SKIP = (model.Outcome.SUCCEEDED, model.Outcome.ROLLED_BACK,
                               model.Outcome.FAILED, model.Outcome.TIMED_OUT,
                               model.Outcome.SKIPPED)
WAIT = releases.AppWait.WAITING_FOR_WINDOW


@pytest.mark.parametrize(("apps", "superseded", "expected"), [
    ({}, False, R.SUCCEEDED),
    ({"/a": OK, "/b": OK}, False, R.SUCCEEDED),
    ({"/a": OK, "/b": OK}, True, R.SUCCEEDED),
    ({"/a": OK, "/b": None}, False, R.IN_PROGRESS),
    ({"/a": OK, "/b": None}, True, R.SUPERSEDED),
    ({"/a": RB, "/b": None}, True, R.SUPERSEDED),
    ({"/a": OK, "/b": RB}, False, R.PARTIALLY_ROLLED_BACK),
    ({"/a": RB}, False, R.ROLLED_BACK),
    ({"/a": RB, "/b": RB}, True, R.ROLLED_BACK),
    ({"/a": RB, "/b": SKIP}, False, R.ROLLED_BACK),
    ({"/a": OK, "/b": SKIP}, False, R.SUCCEEDED),
    ({"/a": OK, "/b": FAIL}, False, R.FAILED),
    ({"/a": RB, "/b": TIMEOUT}, False, R.FAILED),
    # An app a window holds: the release is not over (issue 17), until a newer one exists.
    ({"/a": OK, "/b": WAIT}, False, R.WAITING_FOR_WINDOW),
    ({"/a": RB, "/b": WAIT}, False, R.WAITING_FOR_WINDOW),
    ({"/a": OK, "/b": WAIT}, True, R.SUPERSEDED),
    ({"/a": FAIL, "/b": WAIT}, False, R.FAILED),
    ({"/a": None, "/b": WAIT}, False, R.IN_PROGRESS),
])
def test_the_release_outcome_follows_from_its_apps(
    apps: dict[str, releases.AppOutcome], superseded: bool, expected: R
) -> None:
    assert releases.overall(collections.Counter(apps.values()), superseded=superseded) \
        is expected


@pytest.mark.parametrize(("old", "new", "expected"), [
    ({"web": "lhcb/web:v1"}, {"web": "lhcb/web:v1"}, []),
    ({"web": "lhcb/web:v1"}, {"web": "lhcb/web:v2"}, ["web (lhcb/web): v1 -> v2"]),
    ({}, {"web": "host:5000/lhcb/web:v2"}, ["web (host:5000/lhcb/web): - -> v2"]),
    ({"web": "lhcb/web:v1"}, {}, ["web (lhcb/web): v1 -> -"]),
    ({"web": "lhcb/web"}, {"web": "lhcb/web:v2@sha256:ab"},
     ["web (lhcb/web): latest -> v2@sha256:ab"]),
])
def test_image_changes_say_old_and_new_tag_by_name(
    old: dict[str, str], new: dict[str, str], expected: list[str]
) -> None:
    assert [str(c) for c in releases.image_changes(old, new)] == expected


def test_image_references_come_from_images_yaml_entries() -> None:
    images = {"web": model.ImageRef(name="web", repository="lhcb/web", tag="v2")}
    assert releases.image_references(images) == {"web": "lhcb/web:v2"}


def test_a_bump_commit_says_the_release_came_from_a_tag_seen_in_the_registry() -> None:
    digest = "sha256:" + "4f" * 32
    message = retag.commit_message(image="lhcbdirac", old_tag="v8r2p45", new_tag="v8r2p46",
                                   digest=digest, pinned=False)
    assert retag.bump_of(message) == ("lhcbdirac", "v8r2p45", "v8r2p46", digest)
    said = releases.cause(trigger="poll", author="reconciler", message=message,
                          requested_by=None)
    assert said.startswith("tag v8r2p46 of lhcbdirac seen in the registry (v8r2p45 -> v8r2p46")
    by_hand = releases.cause(trigger="webhook", author="Alice Release",
                             message="images.yaml: lhcbdirac v8r2p45 -> v8r2p46",
                             requested_by=None)
    assert by_hand == "commit by Alice Release, webhook"
    assert releases.cause(trigger="manual", author=None, message=None,
                          requested_by="bob") == "manual by bob"


@pytest.mark.parametrize(("requested_by", "automatic", "expected"), [
    ("carol", False, "promoted from cert (lhcbdirac v8r2p46) by carol, poll"),
    (None, True, "promoted from cert (lhcbdirac v8r2p46) automatically after the soak, poll"),
])
def test_a_promotion_commit_says_the_release_was_promoted_from_another_environment(
        requested_by: str | None, automatic: bool, expected: str) -> None:
    verdict = promotion.Verdict(decision=promotion.Decision.PROMOTE, image="lhcbdirac",
                                tag="v8r2p46", target_tag="v8r2p45", soak=3600,
                                apps=("/dirac/web/portal",))
    message = promotion.commit_message(
        verdict=verdict, images_path="prod/images.yaml", source="cert", target="prod",
        source_revision="a" * 40, requested_by=requested_by, automatic=automatic,
        evidence=[promotion.AppEvidence(app_id="/dirac/web/portal",
                                        live_image="lhcbdirac:v8r2p46", health="healthy",
                                        healthy_since=1_764_000_000.0)])
    said = releases.cause(trigger="poll", author="reconciler", message=message,
                          requested_by=None)
    assert said == expected
