"""Notices, pure: which transitions the records show, worded for people, and the chat payload.

Each record (a drift, a failed run, a rollback, a quarantine) becomes notices with a stable
key (``drift:12:detected``, ``rollback:3``...) that makes it go out once; what changed is
summarised field by field, masked; who is the commit author or the Marathon client.
:mod:`reconciler.shell.notify` reads the records and delivers these.
"""

from __future__ import annotations

import enum
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core import redact
from reconciler.shell import records as recording

_MAX_FIELDS = 8
_MAX_VALUE = 120
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.I)


class Transition(enum.StrEnum):
    DRIFT_DETECTED = "drift detected"
    DRIFT_CORRECTED = "drift corrected"
    DRIFT_GONE = "drift gone"
    """Live equals desired again without a correction (reverted by hand, or Git changed)."""
    FLAPPING = "drift flapping"
    SYNC_FAILED = "sync failed"
    ROLLBACK_DONE = "rollback done"
    QUARANTINED = "quarantined"


_LEVEL = {
    Transition.DRIFT_DETECTED: "warning",
    Transition.DRIFT_CORRECTED: "info",
    Transition.DRIFT_GONE: "info",
    Transition.FLAPPING: "error",
    Transition.SYNC_FAILED: "error",
    Transition.ROLLBACK_DONE: "error",
    Transition.QUARANTINED: "warning",
}
_COLOUR = {"info": "#2eb886", "warning": "#d9a521", "error": "#e01e5a"}


@dataclass(frozen=True)
class Notice:
    """One transition, worded for people; ``key`` makes it go out once."""

    key: str
    transition: Transition
    app_id: str | None
    what: tuple[str, ...]
    """Field summary lines, masked: ``/instances: 1 → 5``."""
    why: str
    who: str
    at: str
    link: str | None = None
    """Path of the dashboard page to open (``/apps/dirac-cert/web/portal``)."""
    also_claims: tuple[str, ...] = ()
    """Keys of earlier transitions this notice makes redundant (a drift corrected before it
    was announced is announced once, as corrected)."""
    environment: str | None = None
    """The environment of ``RECONCILER_ENVIRONMENTS`` whose controller saw it (None: the one
    environment, and nothing is said)."""

    @property
    def level(self) -> str:
        return _LEVEL[self.transition]

    @property
    def title(self) -> str:
        # With two environments running the same apps, "quarantined" alone is ambiguous.
        what = f"{self.transition} in {self.environment}" if self.environment \
            else str(self.transition)
        return f"{what}: {self.app_id}" if self.app_id else what

    def as_text(self) -> str:
        """The notice as plain text (Sentry message, logs)."""
        lines = [f"[reconciler] {self.title}"]
        if self.environment:
            lines.append(f"environment: {self.environment}")
        if self.what:
            lines.append("what: " + "; ".join(self.what))
        lines += [f"why: {self.why}", f"who: {self.who}", f"at: {self.at}"]
        return "\n".join(lines)


# -- pure: records to notices ------------------------------------------------------------------


def drift_notices(
    drift: recording.Drift, *, desired: Mapping[str, Any] | None = None
) -> list[Notice]:
    """The notices a drift record calls for in its current status.

    ``desired`` is the app's definition last applied from Git (for the old values).
    """
    what = drift_summary(drift.patch, desired)
    who = drift_who(drift)
    link = app_link(drift.app_id)
    detected_key = f"drift:{drift.drift_id}:detected"
    if drift.status == "resolved":
        corrected = drift.action == "corrected" or drift.corrections > 0
        return [Notice(
            key=f"drift:{drift.drift_id}:resolved",
            transition=Transition.DRIFT_CORRECTED if corrected else Transition.DRIFT_GONE,
            app_id=drift.app_id, what=what, who=who, link=link,
            why=("drift correction: reconciler re-applied the desired state from Git"
                 if corrected else f"live equals desired again ({drift.action or 'resolved'})"),
            at=drift.resolved_at or drift.last_seen_at, also_claims=(detected_key,))]
    policy = ("will be corrected" if drift.policy == "correct"
              else "reported only, live left alone")
    notices = [Notice(
        key=detected_key, transition=Transition.DRIFT_DETECTED, app_id=drift.app_id,
        what=what, who=who, link=link, at=drift.first_seen_at,
        why=f"Marathon differs from Git outside a sync ({drift.kind} change); "
            f"policy {drift.policy}: {policy}")]
    if drift.status == "flapping":
        notices.append(Notice(
            key=f"drift:{drift.drift_id}:flapping", transition=Transition.FLAPPING,
            app_id=drift.app_id, what=what, who=who, link=link, at=drift.last_seen_at,
            why=(f"corrected {drift.corrections} times and changed again: something keeps "
                 "changing it (a person, a script, an autoscaler); automatic correction "
                 "stopped. If it owns these fields, accept its changes in reconciler.yaml:\n"
                 f"{drift.suggested_ignore}")))
    return notices


def failure_streaks(runs: Sequence[recording.Run]) -> dict[int, int]:
    """Each failed run's id -> the id of the first run of its streak.

    While Marathon or Git is down every retry records a failed run; they are one transition
    (in sync -> failing), so a failed run that follows a failed run of the same revision with
    the same error continues that streak instead of starting a new one.
    """
    streaks: dict[int, int] = {}
    previous: recording.Run | None = None
    for run in sorted(runs, key=lambda r: r.run_id):
        if run.dry_run or run.outcome is None:
            continue
        if run.outcome == "failed":
            same = (previous is not None and previous.outcome == "failed"
                    and previous.revision == run.revision
                    and _first_line(previous.error) == _first_line(run.error))
            streaks[run.run_id] = streaks[previous.run_id] if same and previous else run.run_id
        previous = run
    return streaks


def run_notice(run: recording.Run, *, revision: recording.SeenRevision | None,
               streak_start: int | None = None) -> Notice | None:
    """A failed sync run (its error says why), or None for any other outcome. Runs of one
    failure streak (``streak_start``) share a key, so the streak is announced once."""
    if run.outcome != "failed" or run.dry_run:
        return None
    return Notice(
        key=f"run:{streak_start or run.run_id}:failed", transition=Transition.SYNC_FAILED,
        app_id=None,
        what=(f"run #{run.run_id} of {describe_revision(revision, run.revision)} "
              f"(trigger {run.trigger})",),
        why=_first_line(run.error) or "a change failed and could not be rolled back",
        who=revision_who(revision, requested_by=run.requested_by),
        at=run.finished_at or run.started_at)


def rollback_notice(
    rollback: recording.Rollback, *, change: recording.Change | None,
    revision: recording.SeenRevision | None,
) -> Notice:
    """A rollback: what the failed change was, why it failed, who released it."""
    what = patch_summary(change.patch) if change is not None else ()
    what += (f"Marathon version {rollback.from_version} → {rollback.to_version}",)
    if rollback.method == "manual":
        why = "manual rollback"
        who = rollback.requested_by or "unknown"
    else:
        reasons = [r for r in (rollback.reason,
                               f"stuck in {rollback.stuck_step}" if rollback.stuck_step else None,
                               f"last task failure: {rollback.failure}" if rollback.failure
                               else None) if r]
        release = describe_revision(revision, change.revision if change else None)
        why = f"release {release} failed: " + ("; ".join(reasons) or "unhealthy")
        who = revision_who(revision, requested_by=rollback.requested_by)
    return Notice(key=f"rollback:{rollback.rollback_id}", transition=Transition.ROLLBACK_DONE,
                  app_id=rollback.app_id, what=what, why=f"{why} (outcome {rollback.outcome})",
                  who=who, at=rollback.at, link=app_link(rollback.app_id))


def quarantine_notice(
    quarantine: recording.Quarantine, *, revision: recording.SeenRevision | None
) -> Notice:
    return Notice(
        key=f"quarantine:{quarantine.quarantine_id}", transition=Transition.QUARANTINED,
        app_id=quarantine.app_id,
        what=(f"revision {describe_revision(revision, quarantine.revision)} will not be "
              "applied to this app again until Git changes or someone retries it",),
        why=quarantine.reason or "a change of this revision failed",
        who=revision_who(revision, requested_by=None), at=quarantine.at,
        link=app_link(quarantine.app_id))


def drift_summary(
    patch: Iterable[Mapping[str, Any]], desired: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """``/instances: 1 → 5`` lines for a drift patch (desired → live), masked."""
    lines = []
    for op in patch:
        path = str(op.get("path", ""))
        new = "(removed)" if op.get("op") == "remove" else _value(op.get("value"), path)
        old = _resolve(desired, path) if desired is not None else _MISSING
        lines.append(f"{path}: {new}" if old is _MISSING
                     else f"{path}: {_value(old, path)} → {new}")
    return _cut(lines)


def patch_summary(patch: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """``/container/docker/image → "lhcbdirac:v8r2p45"`` lines for a change's patch."""
    lines = []
    for op in patch:
        path = str(op.get("path", ""))
        if op.get("op") == "remove":
            lines.append(f"{path} removed")
        else:
            lines.append(f"{path} → {_value(op.get('value'), path)}")
    return _cut(lines)


def drift_who(drift: recording.Drift) -> str:
    if not drift.client_ip:
        return "unknown: no Marathon API call was seen for this app"
    text = f"Marathon client {drift.client_ip}"
    if drift.uri:
        text += f" ({drift.uri})"
    return text


def revision_who(revision: recording.SeenRevision | None, *, requested_by: str | None) -> str:
    parts = []
    if revision is not None and revision.author:
        parts.append(f"commit author {revision.author}")
    if requested_by:
        parts.append(f"requested by {requested_by}")
    return ", ".join(parts) or "unknown"


def describe_revision(revision: recording.SeenRevision | None, sha: str | None) -> str:
    text = short(revision.revision if revision is not None else sha)
    if revision is not None and revision.message:
        text += f" ({_first_line(revision.message)})"
    return text


def short(revision: str | None) -> str:
    if not revision:
        return "unknown revision"
    return revision[:10] if len(revision) == 40 else revision


def app_link(app_id: str) -> str:
    return "/apps/" + urllib.parse.quote(app_id.lstrip("/"))


def payload(notice: Notice, *, dashboard_url: str | None = None) -> dict[str, Any]:
    """The webhook body: Slack's format (``text`` + ``attachments``), which Mattermost takes.
    ``dashboard_url`` is the environment's own dashboard when there are several."""
    link = (dashboard_url.rstrip("/") + notice.link) if dashboard_url and notice.link else None
    fields = [{"title": "environment", "value": notice.environment, "short": True}] \
        if notice.environment else []
    fields += [{"title": "what", "value": "\n".join(notice.what) or "—", "short": False},
              {"title": "why", "value": notice.why, "short": False},
              {"title": "who", "value": notice.who, "short": True},
              {"title": "when", "value": notice.at, "short": True}]
    attachment: dict[str, Any] = {
        "fallback": notice.as_text(), "color": _COLOUR[notice.level],
        "title": notice.title, "fields": fields, "footer": "reconciler",
    }
    if link:
        attachment["title_link"] = link
    return {"text": f"reconciler: {notice.title}", "attachments": [attachment]}


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` without the given secret strings nor credentials written in URLs."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", redact.mask_text(text, list(secrets)))


_MISSING: Any = object()


def _resolve(document: Any, pointer: str) -> Any:
    current = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, Mapping) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            return _MISSING
    return current


def _value(value: Any, pointer: str) -> str:
    text = json.dumps(redact.mask(value, pointer=pointer), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _cut(lines: Sequence[str]) -> tuple[str, ...]:
    if len(lines) <= _MAX_FIELDS:
        return tuple(lines)
    return (*lines[:_MAX_FIELDS], f"… and {len(lines) - _MAX_FIELDS} more fields")


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""
