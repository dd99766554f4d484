"""Promotion's gate: may one environment's image tag go to another now? Pure.

A release reaches production only after it has run healthy in certification: the tag that
certification's ``images.yaml`` names for an image must be live on *every* certification app
that uses the image, each healthy, and each for at least the soak time. :func:`judge` takes
those facts (read by the shell from the source environment's desired state, its Marathon and
its records) and the clock's ``now``, and answers with a :class:`Verdict`: promote, wait
(only time is missing), refuse (something else is: an app unhealthy, on another tag,
missing) or nothing to do (the target already has the tag). Every app that holds the
promotion back is a :class:`Blocker` naming the app and, where known, since when it has been
healthy and when it will have soaked.

:func:`healthy_since` says since when one live Marathon app has been healthy without a break
(the start of the newest task's healthy streak), from the timestamps Marathon reports.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core import health, model, since


class Decision(enum.StrEnum):
    """What a promotion request comes to (a closed set)."""

    PROMOTE = "promote"
    """Every source app has run the tag healthy for the soak time: write the commit."""
    WAIT = "wait"
    """Every source app runs the tag healthy, some not yet for the soak time."""
    REFUSE = "refuse"
    """Something other than time is missing: an app is unhealthy, on another tag, absent."""
    NOTHING = "nothing to promote"
    """The target already names this tag (and digest)."""


@dataclass(frozen=True)
class AppEvidence:
    """One source-environment app that uses the image, as it is live now."""

    app_id: str
    live_image: str | None
    """The image reference Marathon runs (None: the app is not on Marathon)."""
    health: str
    """A :class:`health.HealthStatus` value."""
    healthy_since: float | None
    """UNIX seconds since when the app has been healthy on this definition (None: unknown)."""
    state: str | None = None
    """The app's state word from the status model (``quarantined``, ``drifted``...)."""


@dataclass(frozen=True)
class Blocker:
    """One app that holds the promotion back, and why."""

    app_id: str
    reason: str
    healthy_since: float | None = None
    soaked_at: float | None = None
    """When the app will have run healthy for the soak time (only when time is all it needs)."""

    def as_json(self) -> dict[str, Any]:
        return {"app_id": self.app_id, "reason": self.reason,
                "healthy_since": _iso(self.healthy_since), "soaked_at": _iso(self.soaked_at)}


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    image: str
    tag: str
    """The tag (``tag@digest`` when pinned) the source runs and the target would get."""
    target_tag: str | None
    soak: float
    apps: tuple[str, ...]
    """The source apps that use the image."""
    blockers: tuple[Blocker, ...] = ()
    soaked_since: float | None = None
    """The latest healthy-since of the source apps: when the soak of the slowest started."""
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.decision is Decision.PROMOTE

    @property
    def ready_at(self) -> float | None:
        """When the soak will be over, if only time is missing."""
        if self.decision is not Decision.WAIT or self.soaked_since is None:
            return None
        return self.soaked_since + self.soak

    def message(self, *, source: str, target: str) -> str:
        """One paragraph for people: what happens, or what is missing (which app, healthy
        since when)."""
        head = f"{self.image} {self.target_tag or '-'} -> {self.tag} ({source} -> {target})"
        if self.decision is Decision.PROMOTE:
            return (f"{head}: promotable: {len(self.apps)} app(s) of {source} healthy on "
                    f"{self.tag} for at least {duration(self.soak)}")
        if self.decision is Decision.NOTHING:
            return f"{head}: nothing to promote: {self.reason}"
        lines = [f"{head}: refused: {self.reason}"]
        lines += [f"  {b.app_id}: {b.reason}" for b in self.blockers]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"decision": str(self.decision), "accepted": self.accepted, "image": self.image,
                "tag": self.tag, "target_tag": self.target_tag, "soak_seconds": self.soak,
                "apps": list(self.apps), "blockers": [b.as_json() for b in self.blockers],
                "soaked_since": _iso(self.soaked_since), "ready_at": _iso(self.ready_at),
                "reason": self.reason}


def judge(*, image: str, source_reference: str | None, target_tag: str | None,
          apps: Sequence[AppEvidence], soak: float, now: float) -> Verdict:
    """May ``image`` go from the source environment (whose catalog names
    ``source_reference``, ``repository:tag[@digest]``) to the target (whose catalog has
    ``target_tag``, ``tag[@digest]``) at ``now``?

    ``apps`` are the source apps whose desired definition uses the image; ``soak`` seconds.
    """
    if source_reference is None:
        return Verdict(decision=Decision.REFUSE, image=image, tag="-", target_tag=target_tag,
                       soak=soak, apps=(), reason=f"the source has no image {image!r}")
    tag = tag_of(source_reference)
    base = Verdict(decision=Decision.REFUSE, image=image, tag=tag, target_tag=target_tag,
                   soak=soak, apps=tuple(sorted(a.app_id for a in apps)))
    if target_tag == tag:
        return dataclasses.replace(base, decision=Decision.NOTHING,
                                   reason=f"the target already has {image} {tag}")
    if not apps:
        return dataclasses.replace(
            base, reason=f"no app of the source uses {image}: nothing has run {tag}")
    blockers = [b for app in sorted(apps, key=lambda a: a.app_id)
                if (b := _blocker(app, reference=source_reference, soak=soak, now=now))]
    starts = [a.healthy_since for a in apps if a.healthy_since is not None]
    soaked_since = max(starts) if len(starts) == len(apps) else None
    if not blockers:
        return dataclasses.replace(base, decision=Decision.PROMOTE, soaked_since=soaked_since)
    ready_times = [b.soaked_at for b in blockers if b.soaked_at is not None]
    if len(ready_times) == len(blockers):  # time is all that is missing
        return dataclasses.replace(
            base, decision=Decision.WAIT, blockers=tuple(blockers), soaked_since=soaked_since,
            reason=f"soak of {duration(soak)} not over: ready at {_iso(max(ready_times))}")
    count = len(blockers) - len(ready_times)
    return dataclasses.replace(
        base, blockers=tuple(blockers), soaked_since=soaked_since,
        reason=f"{count} of {len(apps)} app(s) not running {tag} healthy")


def _blocker(app: AppEvidence, *, reference: str, soak: float, now: float) -> Blocker | None:
    if app.live_image is None:
        return Blocker(app.app_id, "not on Marathon")
    if app.live_image != reference:
        return Blocker(app.app_id, f"runs {tag_of(app.live_image)}, not {tag_of(reference)}")
    if app.health != health.HealthStatus.HEALTHY:
        return Blocker(app.app_id, f"{app.health}, not Healthy")
    if app.state in _HELD:
        return Blocker(app.app_id, f"{app.state}")
    if app.healthy_since is None:
        return Blocker(app.app_id, "healthy, since an unknown time")
    soaked = now - app.healthy_since
    if soaked < soak:
        return Blocker(app.app_id, f"healthy since {_iso(app.healthy_since)}, for "
                                   f"{duration(max(soaked, 0))} of {duration(soak)}",
                       healthy_since=app.healthy_since, soaked_at=app.healthy_since + soak)
    return None


_HELD = frozenset({model.AppState.QUARANTINED, model.AppState.DRIFTED, model.AppState.BLOCKED})
"""States that disqualify an app even when healthy: what runs is not what Git released."""


def healthy_since(live: Mapping[str, Any] | None, *, in_state_since: str | None = None
                  ) -> float | None:
    """Since when ``live`` (a Marathon app with ``tasks``) has been healthy without a break:
    the latest start of any current task's healthy streak (its start, its first health check
    success, its last health check failure), and not before ``in_state_since`` (the status
    model's ``since``: applied, last config change or scaling). None when no task says."""
    if live is None:
        return None
    starts: list[float] = []
    for task in live.get("tasks") or ():
        if task.get("state") not in (None, "TASK_RUNNING"):
            continue
        times = [task.get("startedAt")]
        for result in task.get("healthCheckResults") or ():
            times += [result.get("firstSuccess"), result.get("lastFailure")]
        start = _latest(times)
        if start is not None:
            starts.append(start)
    if not starts:
        return None
    return _latest([*[_iso(s) for s in starts], in_state_since])


def tag_of(reference: str) -> str:
    """``repo:tag@digest`` -> ``tag@digest``; a registry port is not a tag."""
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return tag + (f"@{digest}" if digest else "")


def duration(seconds: float) -> str:
    """``90`` -> ``1m30s``; ``86400`` -> ``1d``."""
    whole = int(round(seconds))
    if whole == 0:
        return "0s"
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


def _latest(times: Sequence[Any]) -> float | None:
    chosen = since.latest(*(t for t in times if isinstance(t, str)))
    if chosen is None:
        return None
    at = dt.datetime.fromisoformat(chosen.replace("Z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


def commit_message(*, verdict: Verdict, images_path: str, source: str, target: str,
                   source_revision: str | None, evidence: Sequence[AppEvidence],
                   requested_by: str | None, automatic: bool) -> str:
    """The promotion commit's message: what moved, from which release, and the soak's
    evidence (each source app and since when it has been healthy)."""
    lines = [f"{images_path}: {verdict.image} {verdict.target_tag or '-'} -> {verdict.tag} "
             f"(promoted from {source})", "",
             f"{verdict.image} {verdict.tag} ran healthy in {source} for at least "
             f"{duration(verdict.soak)} on every app using it:"]
    lines += [f"  {app.app_id} healthy since {_iso(app.healthy_since)}"
              for app in sorted(evidence, key=lambda a: a.app_id)]
    if source_revision:
        lines.append(f"{source} release: {source_revision}")
    lines.append(f"Promoted automatically to {target} after the soak (auto_promote)."
                 if automatic else f"Promoted to {target} by {requested_by or 'unknown'}.")
    return "\n".join(lines) + "\n"


_PROMOTED = re.compile(r"\S+: (?P<image>\S+) \S+ -> (?P<tag>\S+) \(promoted from "
                       r"(?P<source>[^\s)]+)\)\n")
_BY = re.compile(r"^Promoted (?:automatically to \S+ after the soak|to \S+ by (?P<who>.+))\.$",
                 re.M)


@dataclass(frozen=True)
class PromotionCommit:
    """What a promotion commit's message says (the inverse of :func:`commit_message`)."""

    source: str
    image: str
    tag: str
    requested_by: str | None
    """Who asked; None when it was automatic (or the message no longer says)."""


def promotion_of(message: str | None) -> PromotionCommit | None:
    """The promotion a commit's message records, else None (what the release view says
    started a release)."""
    found = _PROMOTED.match(message or "")
    if found is None:
        return None
    by = _BY.search(message or "")
    return PromotionCommit(source=found["source"], image=found["image"], tag=found["tag"],
                           requested_by=by["who"] if by is not None else None)
