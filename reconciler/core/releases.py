"""Releases: one revision applied across apps, and how it ended overall. Pure.

A release is a record, not a run: the runs that apply a revision come and go (a retry, a
webhook, a no-op poll), the release keeps what each app's change of that revision came to.
:func:`overall` turns the per-app outcomes into the release's outcome; :func:`image_changes`
says which images the revision moved (old tag -> new tag), from the image references of the
release before it.

The per-app outcomes are only ever written by a change of that app (a no-op run writes
nothing), so a rolled-back release stays rolled back whatever runs later.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.core import model, promotion, retag


class ReleaseOutcome(enum.StrEnum):
    """How a release ended: a closed set, ordered here from open to final."""

    IN_PROGRESS = "in progress"
    """Some app's change has no outcome yet."""
    WAITING_FOR_WINDOW = "waiting for window"
    """Some app's change (or a later wave's) waits for its sync window; the run that applies
    it when the window opens finishes this same release."""
    SUPERSEDED = "superseded"
    """A newer release started before every app's change of this one ended."""
    SUCCEEDED = "succeeded"
    """Every change of the release succeeded (or there was none to make)."""
    PARTIALLY_ROLLED_BACK = "partially rolled back"
    """Some apps were rolled back (their revision quarantined), the others succeeded."""
    ROLLED_BACK = "rolled back"
    """Every change of the release was rolled back."""
    FAILED = "failed"
    """A change failed or timed out and could not be rolled back: a human is needed. Beyond
    the four words of the issue, because such a release is neither succeeded nor undone."""


class WaveState(enum.StrEnum):
    """Where one release wave stands (a closed set; ``waves:`` in ``reconciler.yaml``)."""

    DEPLOYING = "deploying"
    SOAKING = "soaking"
    """Deployed; its apps must stay healthy for the soak before the next wave starts."""
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled back"
    """An app failed (deploying or soaking): every app of the wave was rolled back."""
    FAILED = "failed"
    """It failed and some rollback failed too: a human is needed."""
    NOT_STARTED = "not started"
    """An earlier wave failed: this one was left untouched (its apps quarantined)."""


class AppWait(enum.StrEnum):
    """An app of a release whose change has not started, and why (stored as its outcome)."""

    WAITING_FOR_WINDOW = "waiting for window"


AppOutcome = model.Outcome | AppWait | None
"""One app's change in a release: ended, waiting to start, or None (under way)."""

_BROKEN = frozenset({model.Outcome.FAILED, model.Outcome.TIMED_OUT})


def app_outcome(text: str | None) -> AppOutcome:
    """An app's outcome as recorded (None: under way)."""
    if text is None:
        return None
    if text in {w.value for w in AppWait}:
        return AppWait(text)
    return model.Outcome(text)


def overall(apps: Mapping[AppOutcome, int], *, superseded: bool = False) -> ReleaseOutcome:
    """The release's outcome from how many of its apps came to each outcome (None: change
    not ended; SKIPPED: not counted; waiting for a window: the release is not over,
    whatever the others came to).

    ``superseded``: a newer release exists; it only matters while a change has not ended
    (a held app of an older revision is never applied: the newer revision is).
    """
    counted = {o: n for o, n in apps.items() if n > 0 and o is not model.Outcome.SKIPPED}
    if None in counted:
        return ReleaseOutcome.SUPERSEDED if superseded else ReleaseOutcome.IN_PROGRESS
    if any(o in _BROKEN for o in counted):
        return ReleaseOutcome.FAILED
    if AppWait.WAITING_FOR_WINDOW in counted:
        return ReleaseOutcome.SUPERSEDED if superseded else ReleaseOutcome.WAITING_FOR_WINDOW
    rolled_back = counted.get(model.Outcome.ROLLED_BACK, 0)
    if rolled_back and rolled_back == sum(counted.values()):
        return ReleaseOutcome.ROLLED_BACK
    if rolled_back:
        return ReleaseOutcome.PARTIALLY_ROLLED_BACK
    return ReleaseOutcome.SUCCEEDED


@dataclass(frozen=True)
class ImageChange:
    """An image the release moved: ``name`` as in ``images.yaml``."""

    name: str
    repository: str
    old: str | None
    """The tag before (None: the image is new in this release)."""
    new: str | None
    """The tag now (None: the image left ``images.yaml``)."""

    def __str__(self) -> str:
        return f"{self.name} ({self.repository}): {self.old or '-'} -> {self.new or '-'}"


def cause(*, trigger: str, author: str | None, message: str | None,
          requested_by: str | None) -> str:
    """Who or what started a release, in words: a tag the registry watch saw (its bump
    commit), a promotion from another environment (its commit), else the commit's author,
    and how the run came (poll, webhook, by whom)."""
    how = trigger + (f" by {requested_by}" if requested_by else "")
    bump = retag.bump_of(message)
    if bump is not None:
        image, old, new, digest = bump
        return (f"tag {new} of {image} seen in the registry ({old} -> {new}, "
                f"{digest[:19]}), {how}")
    promoted = promotion.promotion_of(message)
    if promoted is not None:
        who = (f" by {promoted.requested_by}" if promoted.requested_by
               else " automatically after the soak")
        return (f"promoted from {promoted.source} ({promoted.image} {promoted.tag}){who}, "
                f"{how}")
    return f"commit by {author}, {how}" if author else how


def image_references(images: Mapping[str, model.ImageRef]) -> dict[str, str]:
    """``name -> repository:tag[@digest]``: what a release keeps of its images."""
    return {name: ref.reference for name, ref in sorted(images.items())}


def image_changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[ImageChange, ...]:
    """The images whose reference differs between two releases, by name."""
    changes = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        repository = _split(after or before or "")[0]
        changes.append(ImageChange(name=name, repository=repository,
                                   old=None if before is None else _split(before)[1],
                                   new=None if after is None else _split(after)[1]))
    return tuple(changes)


def _split(reference: str) -> tuple[str, str]:
    """``repo:tag@digest`` -> (``repo``, ``tag@digest``); a registry port is not a tag."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        repository, tag = name[:colon], name[colon + 1:]
    else:
        repository, tag = name, "latest"
    return repository, tag + (f"@{digest}" if digest else "")
