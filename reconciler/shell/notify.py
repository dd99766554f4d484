"""Tell people when something changed state: a chat webhook and Sentry, once per transition.

Transitions only, never every loop (Flux's habit): drift detected, drift corrected (or gone),
drift flapping, sync failed, rollback done, app quarantined. Each notice says what changed
(a field summary), why (the release: commit and message, a drift correction, a rollback)
and who (the commit author, or the Marathon client that changed the app). Secret values
never leave: patches come masked from the record store, desired values are masked here with
:mod:`reconciler.core.redact`, and known secret strings (the API token, the webhook URL)
and credentials written in URLs are masked in the final text.

How it finds transitions: :meth:`Notifier.scan` reads the record store (drift records, runs,
rollbacks, quarantines of the last ``lookback`` seconds, and never from before notifications
were first turned on: no replay) and turns each record into notices
with a stable key (``drift:12:detected``, ``rollback:3``...). A notice is delivered only if
:meth:`RecordStore.claim_notification` claims its key first, so a transition is announced
once, whichever process or restart sees it, and the controller can call ``scan()`` as often
as it likes (after each reconcile and each drift check)::

    notifier = notify.Notifier(records=store, webhook_url=settings.notify_webhook_url,
                               capture=telemetry.capture_message,   # Sentry, optional
                               dashboard_url="https://reconciler.example.org",
                               secrets=[api_token])
    notifier.scan()

The webhook receives a Slack-compatible payload (``text`` plus ``attachments``), which
Mattermost accepts as is. The key is claimed before sending, so several processes never
announce one transition twice; a failed delivery is logged (without the URL, which holds a
token) and retried by this process with backoff (5 s doubling up to 5 min, 6 more times),
while the dashboard and Sentry show it meanwhile.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core import redact
from reconciler.shell import http, scheduler
from reconciler.shell import records as recording

log = logging.getLogger(__name__)

ENABLED_KEY = "notifications:enabled"
"""Claimed when notifications first run: nothing older than that is announced."""
RETRY_BASE, RETRY_CAP, RETRY_ATTEMPTS = 5.0, 300.0, 6
"""A failed delivery is tried again after 5 s, 10 s, ... up to 5 min, 6 more times."""
STREAK_LOOKBACK_RUNS = 500
"""How many recent runs are read to tell whether a failed run continues a failure streak."""
Capture = Callable[[str, str], Any]
"""``(message, level)`` to Sentry, e.g. ``telemetry.capture_message``; level is a Sentry
level (``info``, ``warning``, ``error``)."""

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

    @property
    def level(self) -> str:
        return _LEVEL[self.transition]

    @property
    def title(self) -> str:
        return f"{self.transition}: {self.app_id}" if self.app_id else str(self.transition)

    def as_text(self) -> str:
        """The notice as plain text (Sentry message, logs)."""
        lines = [f"[reconciler] {self.title}"]
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


def run_notice(run: recording.Run, *, revision: recording.Revision | None,
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
    revision: recording.Revision | None,
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
    quarantine: recording.Quarantine, *, revision: recording.Revision | None
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


def revision_who(revision: recording.Revision | None, *, requested_by: str | None) -> str:
    parts = []
    if revision is not None and revision.author:
        parts.append(f"commit author {revision.author}")
    if requested_by:
        parts.append(f"requested by {requested_by}")
    return ", ".join(parts) or "unknown"


def describe_revision(revision: recording.Revision | None, sha: str | None) -> str:
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
    """The webhook body: Slack's format (``text`` + ``attachments``), which Mattermost takes."""
    link = (dashboard_url.rstrip("/") + notice.link) if dashboard_url and notice.link else None
    fields = [{"title": "what", "value": "\n".join(notice.what) or "—", "short": False},
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


# -- shell: reading records, delivering ---------------------------------------------------------


class Notifier:
    """Finds transitions in the record store and announces each one once."""

    def __init__(
        self,
        *,
        records: recording.RecordStore,
        webhook_url: str | None,
        capture: Capture | None = None,
        dashboard_url: str | None = None,
        secrets: Sequence[str] = (),
        lookback: float = 3600.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._webhook_url = webhook_url
        self._capture = capture
        self._dashboard_url = dashboard_url
        self._secrets = tuple(s for s in (*secrets, webhook_url or "") if s)
        self._lookback = lookback
        self._timeout = timeout
        self._clock = clock
        self._enabled_at: float | None = None
        self._retries: dict[str, _Retry] = {}

    def pending(self) -> list[Notice]:
        """Notices for the transitions recorded in the last ``lookback`` seconds, oldest
        first, announced before or not."""
        store = self._records
        if self._enabled_at is None:
            # Announce only what happened since notifications were first turned on (kept
            # across restarts): turning them on must not replay the last hour.
            self._enabled_at = store.first_claimed_at(ENABLED_KEY)
        since = max(self._clock() - self._lookback, self._enabled_at)
        revisions = {r.revision: r for r in store.revisions()}
        applied = {a.app_id: a.definition for a in store.last_applied().values()}
        notices: list[Notice] = []
        for drift in store.drifts(since=since):
            notices += drift_notices(drift, desired=applied.get(drift.app_id))
        changes_of_run: dict[int, list[recording.Change]] = {}
        streaks: dict[int, int] | None = None
        for entry in store.history(since=since):
            if isinstance(entry.record, recording.Run):
                run = entry.record
                if run.outcome == "failed" and streaks is None:
                    streaks = failure_streaks(store.runs(limit=STREAK_LOOKBACK_RUNS))
                notice = run_notice(run, revision=revisions.get(run.revision),
                                    streak_start=(streaks or {}).get(run.run_id))
                if notice is not None:
                    notices.append(notice)
            elif isinstance(entry.record, recording.Rollback):
                rollback = entry.record
                change = None
                if rollback.run_id is not None:
                    if rollback.run_id not in changes_of_run:
                        changes_of_run[rollback.run_id] = store.changes(run_id=rollback.run_id)
                    change = next((c for c in changes_of_run[rollback.run_id]
                                   if c.app_id == rollback.app_id and c.purpose == "change"),
                                  None)
                revision = revisions.get(change.revision) if change is not None else None
                notices.append(rollback_notice(rollback, change=change, revision=revision))
            elif isinstance(entry.record, recording.Quarantine):
                quarantine = entry.record
                notices.append(quarantine_notice(quarantine,
                                                 revision=revisions.get(quarantine.revision)))
        return sorted(notices, key=lambda n: n.at)

    def scan(self) -> list[Notice]:
        """Announce every transition not announced before, and retry failed deliveries that
        are due; returns the notices announced now."""
        self._retry_due()
        return [notice for notice in self.pending() if self.send(notice)]

    def send(self, notice: Notice) -> bool:
        """Deliver ``notice`` unless its key was claimed before; True when delivered now."""
        if not self._records.claim_notification(notice.key):
            return False
        for key in notice.also_claims:
            self._records.claim_notification(key)
        text = scrub(notice.as_text(), self._secrets)
        log.info("notify %s", text.replace("\n", " | "))
        if self._capture is not None:
            try:
                self._capture(text, notice.level)
            except Exception:
                # Sentry trouble must not stop the controller; the log line above remains.
                log.exception("could not send notice %s to Sentry", notice.key)
        if self._webhook_url is not None and not self._post(notice):
            self._retries[notice.key] = _Retry(notice=notice, backoff=scheduler.Backoff(
                base=RETRY_BASE, cap=RETRY_CAP, clock=self._clock))
            self._retries[notice.key].backoff.failed()
        return True

    def _retry_due(self) -> None:
        for key, retry in list(self._retries.items()):
            if retry.backoff.waiting():
                continue
            if self._post(retry.notice):
                del self._retries[key]
            elif retry.backoff.failures >= RETRY_ATTEMPTS:
                del self._retries[key]
                log.error("notice %s given up after %d attempts", key, RETRY_ATTEMPTS + 1)
            else:
                retry.backoff.failed()

    def _post(self, notice: Notice) -> bool:
        """Deliver to the chat webhook; False when it failed (to be retried)."""
        body = scrub(json.dumps(payload(notice, dashboard_url=self._dashboard_url),
                                ensure_ascii=False), self._secrets)
        # The URL holds the webhook's token: only its host is logged.
        host = urllib.parse.urlsplit(self._webhook_url or "").hostname
        try:
            http.post_json(self._webhook_url or "", body.encode(), timeout=self._timeout)
        except http.Refused as e:
            log.warning("notice %s refused by the webhook at %s: HTTP %s", notice.key, host,
                        e.status)
            return False
        except http.HttpError as e:
            log.warning("notice %s not delivered to the webhook at %s: %s", notice.key, host, e)
            return False
        return True


@dataclass
class _Retry:
    notice: Notice
    backoff: scheduler.Backoff


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
