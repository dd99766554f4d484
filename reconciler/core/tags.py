"""Which registry tag is the newest one an image may move to, and why the others are not.

Pure. Three orders (:class:`model.TagOrder`):

- ``lhcbdirac``: LHCbDIRAC's ``vXrYpZ`` (``v8r2p9 < v8r2p10 < v8r3``; ``v8r3`` equals
  ``v8r3p0``; ``v8r3-pre2`` is a pre-release of ``v8r3``: after every ``v8r2pN``, before
  ``v8r3``);
- ``semver``: ``packaging``'s :class:`~packaging.version.Version` (a leading ``v`` is
  dropped; ``1.4.0-rc.1`` is a pre-release of ``1.4.0``);
- ``regex``: tags matching ``pattern``, ordered by its named group ``key`` (numerically when
  it is all digits) or, without one, by name.

``pattern`` also filters the other two orders (``v8r2p\\d+``: stay on the v8r2 line).
Pre-releases qualify only when the policy allows them. ``pattern`` comes from the config
repo: it is matched by :mod:`~reconciler.core.patterns`, bounded in length and time; a
pattern too slow on any tag refuses the image (:class:`patterns.BadPattern`), never hangs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import packaging.version

from reconciler.core import model, patterns

_LHCBDIRAC = re.compile(r"^v(?P<major>\d+)r(?P<minor>\d+)(?:p(?P<patch>\d+))?"
                        r"(?:-pre(?P<pre>\d+))?$")


class Skip(enum.StrEnum):
    """Why a tag is not the one to move to (a closed set, shown by ``reconciler images``)."""

    NOT_A_VERSION = "not-a-version"
    NOT_MATCHING = "not-matching"
    PRERELEASE = "pre-release"
    OLDER = "older"


class UnorderedTag(Exception):
    """The image's current tag has no place in its order: nothing can be said newer.

    Stalling: a human sets a qualifying tag once, by hand."""


@dataclass(frozen=True)
class Skipped:
    tag: str
    skip: Skip
    reason: str


@dataclass(frozen=True)
class Choice:
    """The outcome of ranking a registry's tags against an image's current tag."""

    current: str
    newest: str | None
    """The newest qualifying tag (may be the current one); None when none qualifies."""
    skipped: tuple[Skipped, ...]
    """Every other tag with its reason, by reason; older ones newest first."""

    @property
    def candidate(self) -> str | None:
        """The tag to move to: the newest qualifying tag when it is newer than the current."""
        return self.newest if self.newest is not None and self.newest != self.current else None


@dataclass(frozen=True)
class _Ranked:
    key: tuple[Any, ...]
    prerelease: bool


def _lhcbdirac(tag: str) -> _Ranked | None:
    match = _LHCBDIRAC.match(tag)
    if match is None:
        return None
    pre = match["pre"]
    # A release sorts after all of its pre-releases: (..., 1, 0) beats (..., 0, n).
    key = (int(match["major"]), int(match["minor"]), int(match["patch"] or 0),
           0 if pre is not None else 1, int(pre or 0))
    return _Ranked(key=key, prerelease=pre is not None)


def _semver(tag: str) -> _Ranked | None:
    try:
        version = packaging.version.Version(tag.removeprefix("v"))
    except packaging.version.InvalidVersion:
        return None
    return _Ranked(key=(version,), prerelease=version.is_prerelease)


def _regex(tag: str, pattern: patterns.Pattern) -> _Ranked | None:
    groups = pattern.fullmatch(tag)
    if groups is None:
        return None
    value = groups.get("key")
    if value is None:
        return _Ranked(key=(1, 0, tag), prerelease=False)
    # Digits compare as numbers (build 10 after build 9); mixed keys keep one type per slot.
    return _Ranked(key=(0, int(value), tag) if value.isdigit() else (1, 0, value),
                   prerelease=False)


_NOT_A_VERSION = {
    model.TagOrder.LHCBDIRAC: "not a vXrYpZ version",
    model.TagOrder.SEMVER: "not a semantic version",
}


def _rank(tag: str, *, policy: model.UpdatePolicy,
          pattern: patterns.Pattern | None) -> tuple[_Ranked | None, Skipped | None]:
    """The tag's place in the order, or why it has none."""
    if policy.order == model.TagOrder.REGEX:
        assert pattern is not None, "the schema requires a pattern for the regex order"
        ranked = _regex(tag, pattern)
        if ranked is None:
            return None, Skipped(tag, Skip.NOT_MATCHING, f"does not match {pattern.pattern!r}")
        return ranked, None
    ranked = _lhcbdirac(tag) if policy.order == model.TagOrder.LHCBDIRAC else _semver(tag)
    if ranked is None:
        return None, Skipped(tag, Skip.NOT_A_VERSION, _NOT_A_VERSION[policy.order])
    if pattern is not None and pattern.fullmatch(tag) is None:
        return None, Skipped(tag, Skip.NOT_MATCHING, f"does not match {pattern.pattern!r}")
    return ranked, None


def choose(tags: Iterable[str], *, current: str, policy: model.UpdatePolicy) -> Choice:
    """Rank ``tags`` (a registry's listing) under ``policy`` against the ``current`` tag.

    Raises :class:`UnorderedTag` when ``current`` itself is not in the order, and
    :class:`patterns.BadPattern` when the policy's pattern is too long or too slow.
    """
    pattern = patterns.Pattern(policy.pattern) if policy.pattern is not None else None
    # The current tag is judged by the order only: a pre-release or a tag outside the
    # pattern, set by hand, is still a place to compare from.
    current_rank = (_lhcbdirac(current) if policy.order == model.TagOrder.LHCBDIRAC
                    else _semver(current) if policy.order == model.TagOrder.SEMVER
                    else _regex(current, pattern) if pattern is not None else None)
    if current_rank is None:
        what = _NOT_A_VERSION.get(policy.order) or f"does not match {policy.pattern!r}"
        raise UnorderedTag(f"current tag {current!r} is {what}: set a tag that is in the "
                           f"{policy.order} order by hand once")
    skipped: list[Skipped] = []
    qualifying: list[tuple[_Ranked, str]] = []
    for tag in sorted(set(tags)):
        ranked, skip = _rank(tag, policy=policy, pattern=pattern)
        if skip is not None:
            skipped.append(skip)
        elif ranked is not None and ranked.prerelease and not policy.prereleases:
            skipped.append(Skipped(tag, Skip.PRERELEASE, "pre-release (prereleases: false)"))
        elif ranked is not None:
            qualifying.append((ranked, tag))
    qualifying.sort(key=lambda pair: (pair[0].key, pair[1]), reverse=True)
    newest: str | None = None
    if qualifying:
        best_rank, best = qualifying[0]
        if best_rank.key <= current_rank.key:
            # Nothing newer: the current tag stays, even if the registry spells it v8r3p0.
            best, best_rank = current, current_rank
        newest = best
        for ranked, tag in qualifying:
            if tag == best:
                continue
            if tag == current:
                reason = f"the current tag; {best} is newer"
            elif ranked.key == best_rank.key:
                reason = f"same version as {best}"
            else:
                reason = f"older than {best}" + (" (the current tag)" if best == current else "")
            skipped.append(Skipped(tag, Skip.OLDER, reason))
    order = list(Skip)
    skipped.sort(key=lambda s: order.index(s.skip))
    return Choice(current=current, newest=newest, skipped=tuple(skipped))
