"""Tag ordering: LHCbDIRAC's vXrYpZ, semantic versions and a regex filter, over real-looking
registry listings, with the reason every other tag was passed over."""

from __future__ import annotations

import pytest

from reconciler.core import model, patterns, tags

LHCBDIRAC_TAGS = ["v8r2p9", "v8r2p10", "v8r2p44", "v8r2p45", "v8r2p46", "v8r3-pre1",
                  "v8r3-pre2", "latest", "v8r2p46-centos7", "master", "v10r0", "v9r1p3"]


def policy(order: str = "lhcbdirac", **options: object) -> model.UpdatePolicy:
    return model.UpdatePolicy(registry="http://127.0.0.1:5000", repository="lhcbdirac",
                              order=model.TagOrder(order), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("older", "newer"), [
    ("v8r2p9", "v8r2p10"),
    ("v8r2p10", "v8r3"),
    ("v8r2p99", "v8r3-pre1"),
    ("v8r3-pre1", "v8r3-pre2"),
    ("v8r3-pre2", "v8r3"),
    ("v8r3", "v8r3p1"),
    ("v9r9p9", "v10r0"),
    ("v8r10", "v10r0"),
    ("v8r3p0", "v8r3p1-pre1"),
])
def test_lhcbdirac_order(older: str, newer: str) -> None:
    choice = tags.choose([older, newer], current=older, policy=policy(prereleases=True))
    assert choice.candidate == newer


def test_v8r3_and_v8r3p0_are_the_same_version() -> None:
    choice = tags.choose(["v8r3p0"], current="v8r3", policy=policy())
    assert choice.candidate is None
    assert choice.newest == "v8r3"
    assert choice.skipped == (tags.Skipped("v8r3p0", tags.Skip.OLDER, "same version as v8r3"),)


@pytest.mark.parametrize(("current", "options", "expected"), [
    ("v8r2p44", {}, "v10r0"),
    ("v8r2p44", {"pattern": r"v8r2p\d+"}, "v8r2p46"),
    ("v8r2p44", {"pattern": r"v8r\d+(p\d+)?(-pre\d+)?", "prereleases": True}, "v8r3-pre2"),
    ("v8r2p44", {"pattern": r"v8r\d+(p\d+)?(-pre\d+)?"}, "v8r2p46"),
    ("v10r0", {}, None),
    ("v11r0", {}, None),
])
def test_newest_qualifying_lhcbdirac_tag(current: str, options: dict[str, object],
                                         expected: str | None) -> None:
    assert tags.choose(LHCBDIRAC_TAGS, current=current,
                       policy=policy(**options)).candidate == expected


def test_every_skipped_tag_says_why() -> None:
    choice = tags.choose(LHCBDIRAC_TAGS, current="v8r2p44", policy=policy(pattern=r"v8r\S+"))
    reasons = {s.tag: (s.skip, s.reason) for s in choice.skipped}
    assert choice.candidate == "v8r2p46"
    assert reasons["latest"] == (tags.Skip.NOT_A_VERSION, "not a vXrYpZ version")
    assert reasons["v8r2p46-centos7"] == (tags.Skip.NOT_A_VERSION, "not a vXrYpZ version")
    assert reasons["v10r0"] == (tags.Skip.NOT_MATCHING, "does not match 'v8r\\\\S+'")
    assert reasons["v8r3-pre2"] == (tags.Skip.PRERELEASE, "pre-release (prereleases: false)")
    assert reasons["v8r2p45"] == (tags.Skip.OLDER, "older than v8r2p46")
    assert reasons["v8r2p44"] == (tags.Skip.OLDER, "the current tag; v8r2p46 is newer")
    assert set(reasons) | {"v8r2p46"} == set(LHCBDIRAC_TAGS)
    # Listed by reason: what is not a version first, what is merely older last.
    assert [s.skip for s in choice.skipped] == sorted(
        (s.skip for s in choice.skipped), key=list(tags.Skip).index)


def test_nothing_newer_keeps_the_current_tag_and_calls_the_rest_older() -> None:
    choice = tags.choose(["v8r2p40", "v8r2p44"], current="v8r2p44", policy=policy())
    assert (choice.newest, choice.candidate) == ("v8r2p44", None)
    assert choice.skipped == (tags.Skipped(
        "v8r2p40", tags.Skip.OLDER, "older than v8r2p44 (the current tag)"),)


def test_a_current_tag_outside_the_order_is_refused_with_a_reason() -> None:
    with pytest.raises(tags.UnorderedTag, match="'latest' is not a vXrYpZ version"):
        tags.choose(LHCBDIRAC_TAGS, current="latest", policy=policy())


@pytest.mark.parametrize(("listing", "current", "options", "expected"), [
    (["1.25.3", "1.25.4", "1.26.0-rc.1", "1.26.0", "stable", "mainline"], "1.25.3", {},
     "1.26.0"),
    (["v1.9.0", "v1.10.0", "v1.11.0-beta.2"], "v1.9.0", {}, "v1.10.0"),
    (["v1.9.0", "v1.10.0", "v1.11.0-beta.2"], "v1.9.0", {"prereleases": True},
     "v1.11.0-beta.2"),
    (["1.25.3", "1.26.0", "2.0.0"], "1.25.3", {"pattern": r"1\.\d+\.\d+"}, "1.26.0"),
    (["3.0.0"], "3.0.0", {}, None),
])
def test_semver(listing: list[str], current: str, options: dict[str, object],
                expected: str | None) -> None:
    choice = tags.choose(listing, current=current, policy=policy("semver", **options))
    assert choice.candidate == expected


def test_semver_names_what_is_not_a_version() -> None:
    choice = tags.choose(["1.0.0", "stable"], current="1.0.0", policy=policy("semver"))
    assert tags.Skipped("stable", tags.Skip.NOT_A_VERSION, "not a semantic version") in (
        choice.skipped)


@pytest.mark.parametrize(("listing", "current", "pattern", "expected"), [
    (["build-9", "build-10", "build-8", "nightly"], "build-8", r"build-(?P<key>\d+)",
     "build-10"),
    (["2024-05-01", "2024-06-12", "2023-12-31", "latest"], "2024-05-01",
     r"\d{4}-\d{2}-\d{2}", "2024-06-12"),
    (["prod-b", "prod-c", "dev-z"], "prod-a", r"prod-(?P<key>[a-z])", "prod-c"),
])
def test_regex_order(listing: list[str], current: str, pattern: str,
                     expected: str | None) -> None:
    choice = tags.choose(listing, current=current, policy=policy("regex", pattern=pattern))
    assert choice.candidate == expected
    assert all(s.skip in (tags.Skip.NOT_MATCHING, tags.Skip.OLDER) for s in choice.skipped)


# A pattern from the config repo is untrusted: nested quantifiers backtrack exponentially
# on a tag that almost matches. With Python's re this match never ends and holds the GIL
# (the controller stops answering); each match is bounded, so these tests end at once.
HOSTILE_TAG = "a" * 36 + "1"


@pytest.mark.timeout(30)
def test_the_reviewers_nested_quantifiers_do_not_hang_the_ranking() -> None:
    choice = tags.choose(["v8r2p44", "v8r2p46", HOSTILE_TAG], current="v8r2p44",
                         policy=policy("regex", pattern=r"(a+)+b|v8r2p\d+"))
    assert choice.candidate == "v8r2p46"
    assert any(s.tag == HOSTILE_TAG and s.skip is tags.Skip.NOT_MATCHING
               for s in choice.skipped)


@pytest.mark.timeout(30)
def test_a_pattern_too_slow_on_a_tag_refuses_the_image_with_a_reason() -> None:
    with pytest.raises(patterns.BadPattern, match=r"pattern '\(a\|aa\)\+c\|v8r2p\\\\d\+' "
                                                  r"took too long on 'aaaa"):
        tags.choose(["v8r2p46", "a" * 60], current="v8r2p44",
                    policy=policy("regex", pattern=r"(a|aa)+c|v8r2p\d+"))


def test_a_pattern_longer_than_the_bound_is_refused_before_it_is_compiled() -> None:
    with pytest.raises(patterns.BadPattern, match="more than 200"):
        tags.choose(["v8r2p46"], current="v8r2p44",
                    policy=policy("regex", pattern="v8r2p\\d+|" + "(a)" * 100))
