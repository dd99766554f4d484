"""Deployments being waited on: Marathon's event stream and polls shared by all waiters.

One daemon thread follows ``/v2/events`` (``deployment_success`` and ``deployment_failed`` end
a wait; step, task and health events wake waiters so that progress shows promptly);
``/v2/deployments`` is polled as a fallback (often while the stream is down, rarely while it
is up), one request serving every waiter. Time is injected (``clock``, ``sleep``).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from typing import Any

from reconciler.core import health, model
from reconciler.shell import marathon, steps

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Clock = Callable[[], float]
Sleep = Callable[[float], None]

ENDS_KEPT = 1024
"""Deployment ends heard, kept at most (the oldest forgotten first). An end is read within
a second of coming, or of its waiter starting (a deployment can end before the answer that
named it is read), by every waiter of that deployment (two steps blocked by one, say); the
ends of a release, and of deployments nobody here waits for (another tool's), must not pile
up for the life of the process. A waiter whose end was forgotten sees its deployment gone
from ``/v2/deployments`` and judges the live app."""

_WATCHED_EVENTS = ("event_stream_attached", "deployment_success", "deployment_failed",
                   "deployment_info", "deployment_step_success", "deployment_step_failure",
                   "health_status_changed_event", "status_update_event")


class Ending(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    GONE = "gone"
    """Vanished from ``/v2/deployments`` without an event: judge by the live app."""


class Watch:
    """Follows ``/v2/events`` on a daemon thread and caches polls shared by all waiters."""

    def __init__(self, client: marathon.MarathonClient, *, clock: Clock, sleep: Sleep,
                 options: steps.ApplyOptions) -> None:
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._options = options
        self._changed = threading.Condition()
        self._ended: dict[str, str] = {}
        self._attached = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()
        self._deployments: dict[str, JSON] | None = None
        self._deployments_at = float("-inf")
        self._apps: dict[str, tuple[float, JSON | None]] = {}
        """The apps waited on, with when each was read (:meth:`app`)."""
        self._apps_lock = threading.Lock()

    @property
    def streaming(self) -> bool:
        return self._attached.is_set()

    def start(self) -> None:
        if not self._options.use_events or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="marathon-events",
                                        daemon=True)
        self._thread.start()
        # Attach before the first change, so that a fast deployment's end is not missed;
        # if the stream is slow, polling still sees every deployment end.
        self._attached.wait(self._options.attach_timeout)

    def close(self) -> None:
        self._closed.set()

    def _follow(self) -> None:
        delay = 0.5
        while not self._closed.is_set():
            try:
                for event in self._client.events(event_types=_WATCHED_EVENTS):
                    if self._closed.is_set():
                        return
                    self._attached.set()
                    delay = 0.5
                    self._on_event(event)
            except Exception as e:  # noqa: BLE001 - any stream failure means: poll, reconnect
                log.info("event stream interrupted, polling meanwhile: %s", e)
            self._attached.clear()
            with self._changed:
                self._changed.notify_all()
            if self._closed.wait(delay):
                return
            delay = min(delay * 2, 10.0)

    def _on_event(self, event: marathon.Event) -> None:
        if event.event_type in ("deployment_success", "deployment_failed"):
            deployment_id = event.data.get("id") or (event.data.get("plan") or {}).get("id")
            if deployment_id:
                with self._changed:
                    self._ended[str(deployment_id)] = event.event_type
                    while len(self._ended) > ENDS_KEPT:
                        del self._ended[next(iter(self._ended))]  # the oldest first
                    self._changed.notify_all()
        else:
            # Step, task and health events: wake the waiters so that progress shows promptly
            # (the exact step is polled when it matters: when a deployment fails).
            with self._changed:
                self._changed.notify_all()

    def _end_of(self, deployment_id: str) -> str | None:
        with self._changed:
            return self._ended.get(deployment_id)

    def wait_for_news(self, timeout: float) -> None:
        if timeout <= 0:
            return
        if self.streaming:
            with self._changed:
                self._changed.wait(timeout)
        else:
            self._sleep(timeout)

    def deployments(self, *, newer_than: float) -> dict[str, JSON] | None:
        """The running deployments, polled at most once per interval for all waiters.

        None while the last poll is not newer than ``newer_than``: a poll older than a
        deployment cannot tell that it ended. Without the event stream a new deployment gets
        a prompt first poll; with it, events tell the end and polls are only a safety net.
        """
        with self._poll_lock:
            now = self._clock()
            age = now - self._deployments_at
            if self.streaming:
                due = age >= self._options.poll_interval_with_events
            else:
                due = age >= self._options.poll_interval or (
                    self._deployments_at <= newer_than and age >= 0.2)
            if due:
                try:
                    listed = self._client.list_deployments()
                except marathon.MarathonError as e:
                    log.warning("cannot list deployments, will retry: %s", e)
                    return None
                with self._changed:
                    self._deployments = {str(d["id"]): d for d in listed if "id" in d}
                self._deployments_at = now
            if self._deployments_at <= newer_than:
                return None
            return self._deployments

    def refresh(self) -> dict[str, JSON]:
        """Poll the running deployments now (for the exact step a failed one is stuck in)."""
        with self._poll_lock:
            listed = self._client.list_deployments()
            with self._changed:
                self._deployments = {str(d["id"]): d for d in listed if "id" in d}
            self._deployments_at = self._clock()
            return self._deployments

    def deployment(self, deployment_id: str) -> JSON | None:
        with self._changed:
            return (self._deployments or {}).get(deployment_id)

    def app(self, app_id: model.AppId) -> JSON | None:
        """The live app with tasks (one ``GET /v2/apps/{id}``), read again at most once per
        progress interval. Only the apps waited on are read and kept: listing every app
        each interval held them all for a progress line (a 10,000-app release with progress
        lines peaked at 341 MB instead of about 200: docs/benchmarks.md, fourth pass).
        Read outside the poll lock: a slow answer holds up no other waiter's end."""
        interval = self._options.progress_interval
        with self._apps_lock:
            read_at, app = self._apps.get(app_id, (float("-inf"), None))
            if 0 <= self._clock() - read_at < interval:
                return app
        try:
            app = self._client.get_app(app_id, embed=marathon.LIVE_EMBED_ONE)
        except marathon.NotFound:
            app = None
        except marathon.MarathonError:
            return app
        with self._apps_lock:
            now = self._clock()
            self._apps = {a: (at, v) for a, (at, v) in self._apps.items()
                          if 0 <= now - at < interval}
            self._apps[app_id] = (now, app)
        return app

    def wait(
        self, app_id: model.AppId, deployment_id: str, *, started: float, deadline_at: float,
        on_progress: steps.ProgressCallback | None,
    ) -> Ending:
        """Until ``deployment_id`` ends or ``deadline_at`` passes; progress on the way.

        ``started``: a poll of ``/v2/deployments`` older than this cannot tell it ended.
        """
        last_progress = float("-inf")
        while True:
            # A replica fenced off stops waiting (marathon.Fenced): the leader resumes it.
            self._client.ensure_may_write()
            ended = self._end_of(deployment_id)
            if ended is not None:
                return _ending(ended)
            now = self._clock()
            if now >= deadline_at:
                return Ending.TIMED_OUT
            running = self.deployments(newer_than=started)
            if running is not None and deployment_id not in running:
                ended = self._end_of(deployment_id)  # its event may have come meanwhile
                return Ending.GONE if ended is None else _ending(ended)
            if on_progress is not None and now - last_progress >= self._options.progress_interval:
                last_progress = now
                steps.emit(on_progress, steps.Progress(
                    app_id, steps.Phase.DEPLOYING, deployment_id=deployment_id,
                    health=self.progress_health(app_id)))
            self.wait_for_news(min(self._options.poll_interval, deadline_at - now))

    def progress_health(self, app_id: model.AppId) -> health.AppHealth | None:
        deployments = list((self.deployments(newer_than=float("-inf")) or {}).values())
        live = self.app(app_id)
        return health.assess(app_id, live, deployments=deployments) if live else None


def _ending(event_type: str) -> Ending:
    return Ending.SUCCEEDED if event_type == "deployment_success" else Ending.FAILED
