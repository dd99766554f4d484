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
(:mod:`reconciler.shell.notices`) with a stable key (``drift:12:detected``, ``rollback:3``).
A notice is delivered only if :meth:`RecordStore.claim_notification` claims its key first,
so a transition is announced once, whichever process or restart sees it, and the controller
can call ``scan()`` as often as it likes (after each reconcile and each drift check)::

    notifier = notify.Notifier(records=store, webhook_url=settings.notify_webhook_url,
                               capture=telemetry.capture_message,   # Sentry, optional
                               dashboard_url="https://reconciler.example.org",
                               secrets=[api_token])
    notifier.scan()

With several environments (``RECONCILER_ENVIRONMENTS``) each controller has its own notifier
with its ``environment``: every notice names it (title, text, a field of the chat message, a
Sentry tag) and links to that environment's pages; with one environment nothing is added.

The webhook receives a Slack-compatible payload (``text`` plus ``attachments``), which
Mattermost accepts as is. The key is claimed before sending, so several processes never
announce one transition twice; a failed delivery is logged (without the URL, which holds a
token) and retried by this process with backoff (5 s doubling up to 5 min, 6 more times),
while the dashboard and Sentry show it meanwhile.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.shell import http, notices, scheduler
from reconciler.shell import records as recording

log = logging.getLogger(__name__)

ENABLED_KEY = "notifications:enabled"
"""Claimed when notifications first run: nothing older than that is announced."""
RETRY_BASE, RETRY_CAP, RETRY_ATTEMPTS = 5.0, 300.0, 6
"""A failed delivery is tried again after 5 s, 10 s, ... up to 5 min, 6 more times."""
STREAK_LOOKBACK_RUNS = 500
"""How many recent runs are read to tell whether a failed run continues a failure streak."""
SENTRY_ENVIRONMENT_TAG = "reconciler_environment"
"""The Sentry tag naming a notice's environment (not Sentry's own ``environment``, which
says which deployment of reconciler sent it)."""


class Capture(Protocol):
    """``(message, level)`` to Sentry, e.g. ``telemetry.capture_message``; level is a Sentry
    level (``info``, ``warning``, ``error``); ``tags`` are given only with an environment."""

    def __call__(self, message: str, level: str, /, *,
                 tags: Mapping[str, str] | None = None) -> Any: ...

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
        environment: str | None = None,
        secrets: Sequence[str] = (),
        lookback: float = 3600.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._webhook_url = webhook_url
        self._capture = capture
        self._dashboard_url = dashboard_url
        self._environment = environment
        self._secrets = tuple(s for s in (*secrets, webhook_url or "") if s)
        self._lookback = lookback
        self._timeout = timeout
        self._clock = clock
        self._enabled_at: float | None = None
        self._retries: dict[str, _Retry] = {}

    def pending(self) -> list[notices.Notice]:
        """Notices for the transitions recorded in the last ``lookback`` seconds, oldest
        first, announced before or not."""
        store = self._records
        if self._enabled_at is None:
            # Announce only what happened since notifications were first turned on (kept
            # across restarts): turning them on must not replay the last hour.
            self._enabled_at = store.first_claimed_at(ENABLED_KEY)
        since = max(self._clock() - self._lookback, self._enabled_at)
        revisions = {r.revision: r for r in store.seen_revisions()}
        applied = {a.app_id: a.definition for a in store.last_applied().values()}
        found: list[notices.Notice] = []
        for drift in store.drifts(since=since):
            found += notices.drift_notices(drift, desired=applied.get(drift.app_id))
        changes_of_run: dict[int, list[recording.Change]] = {}
        streaks: dict[int, int] | None = None
        for entry in store.history(since=since):
            if isinstance(entry.record, recording.Run):
                run = entry.record
                if run.outcome == "failed" and streaks is None:
                    streaks = notices.failure_streaks(store.runs(limit=STREAK_LOOKBACK_RUNS))
                notice = notices.run_notice(run, revision=revisions.get(run.revision),
                                    streak_start=(streaks or {}).get(run.run_id))
                if notice is not None:
                    found.append(notice)
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
                found.append(notices.rollback_notice(rollback, change=change, revision=revision))
            elif isinstance(entry.record, recording.Quarantine):
                quarantine = entry.record
                found.append(notices.quarantine_notice(quarantine,
                                                 revision=revisions.get(quarantine.revision)))
        if self._environment is not None:
            found = [dataclasses.replace(n, environment=self._environment) for n in found]
        return sorted(found, key=lambda n: n.at)

    def scan(self) -> list[notices.Notice]:
        """Announce every transition not announced before, and retry failed deliveries that
        are due; returns the notices announced now."""
        self._retry_due()
        return [notice for notice in self.pending() if self.send(notice)]

    def send(self, notice: notices.Notice) -> bool:
        """Deliver ``notice`` unless its key was claimed before; True when delivered now."""
        if not self._records.claim_notification(notice.key):
            return False
        for key in notice.also_claims:
            self._records.claim_notification(key)
        text = notices.scrub(notice.as_text(), self._secrets)
        log.info("notify %s", text.replace("\n", " | "))
        if self._capture is not None:
            try:
                if notice.environment is None:
                    self._capture(text, notice.level)
                else:
                    self._capture(text, notice.level,
                                  tags={SENTRY_ENVIRONMENT_TAG: notice.environment})
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

    def _post(self, notice: notices.Notice) -> bool:
        """Deliver to the chat webhook; False when it failed (to be retried)."""
        body = notices.scrub(json.dumps(notices.payload(notice, dashboard_url=self._dashboard_url),
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
    notice: notices.Notice
    backoff: scheduler.Backoff


