"""Marathon's apps as last heard, kept current by its event stream (an informer, as in
Kubernetes): the drift check and every page read this instead of asking Marathon.

One full ``GET /v2/apps`` (a *resync*) when the stream (re)attaches, so nothing said during a
gap is lost, and again every ``resync_interval``; in between the stream keeps the cache
current and a quiet cluster costs no request at all:

    api_post_event          the written app's full definition, at once (and who wrote it,
                            handed to ``on_write``): drift is judged from the event itself
    deployment_*            the apps of the plan are refetched (a write through the groups
                            API posts no api_post_event), so are apps with status updates
    app_terminated_event    the app is gone

(Marathon: ``core/event/Events.scala``; ``HttpEventStreamHandleActor`` subscribes a stream,
then publishes its ``event_stream_attached``: the first event of every connection.) When the
stream cannot be followed, :meth:`current` falls back to one ``GET /v2/apps`` per call, and
:attr:`stream_error` says why (``/readyz`` and ``reconciler_event_stream_up``).

Each app is held packed (:mod:`liveapps`): a resync packs again only the status part of an
app whose version it already read (not one an event carried: that is refetched).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from reconciler.core import model
from reconciler.shell import events, liveapps, marathon, memory, scheduler, telemetry

log = logging.getLogger(__name__)

FOLLOWED = ("event_stream_attached", "api_post_event", "deployment_info",
            "deployment_step_success", "deployment_step_failure", "deployment_success",
            "deployment_failed", "status_update_event", "health_status_changed_event",
            "app_terminated_event")
"""The event types asked for (``?event_type=``): what changes an app or its tasks."""
_REFETCH_ALL_ABOVE = 50
"""More stale apps than this at once (a release): one resync instead of a GET per app."""
_RESYNC_GAP = 5.0
"""Seconds at least between two resyncs for stale apps, and ten times the last resync's
duration (a release of 10,000 apps posts events without pause: the definitions come with
the events at once, tasks and health are refreshed every ten seconds or so, and refreshing
never takes more than a tenth of the controller's time)."""
_SETTLE = 0.2
"""Seconds to gather the stale apps of a burst of events before refetching them."""
_RESYNC_BATCH = 500
"""Apps a resync puts in the cache at a time."""

OnWrite = Callable[[model.AppId, events.Attribution], None]
OnChange = Callable[[frozenset[str]], None]


class LiveCache:
    """Follows the event stream on a daemon thread from :meth:`start` to :meth:`stop`."""

    def __init__(self, client: marathon.MarathonClient, *, resync_interval: float,
                 on_write: OnWrite, on_change: OnChange | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 environment: str | None = None) -> None:
        self._client = client
        self._environment = environment
        self._resync_interval = resync_interval
        self._on_write = on_write
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._apps: dict[str, liveapps.Held] = {}
        self._synced_at: float | None = None
        self._following = False
        self._stream_error: str | None = "not attached yet"
        self._stale: set[str] = set()
        self._stale_event = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.resyncs = 0
        self._resync_took = 0.0
        self.changes = 0
        """Counts every change to the cache (readers recompute what they derived from it)."""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        for target, name in ((self._follow, "marathon-events"), (self._refetch, "live-refetch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        # Daemon threads: the stream thread notices at its next event or idle timeout.
        self._stopping.set()
        self._stale_event.set()

    # -- reading ---------------------------------------------------------------------------

    @property
    def following(self) -> bool:
        return self._following

    @property
    def stream_error(self) -> str | None:
        """Why the stream is not followed (the cache then polls), None while it is."""
        return None if self._following else self._stream_error

    def current(self) -> liveapps.LiveApps:
        """The live apps (with tasks, deployments, last failure). From memory while the
        stream is followed and the last resync is younger than the interval; otherwise one
        ``GET /v2/apps`` first (raises :class:`marathon.MarathonError`)."""
        with self._lock:
            fresh = (self._following and self._synced_at is not None
                     and self._clock() - self._synced_at < self._resync_interval)
            if fresh:
                return liveapps.LiveApps(dict(self._apps))
        return self.resync()

    def status_views_now(self) -> Mapping[str, model.JSON]:
        """What statuses read of every live app, by id, unpacked app by app as looked up
        (the status board): from memory, or read once if nothing is yet."""
        cached = self.cached()
        return (cached if cached is not None else self.current()).status_views_by_id()

    def cached(self) -> liveapps.LiveApps | None:
        """What is in memory, never a request; None before the first resync (the pages)."""
        with self._lock:
            return None if self._synced_at is None else liveapps.LiveApps(dict(self._apps))

    def resync(self) -> liveapps.LiveApps:
        """One full ``GET /v2/apps``; replaces the cache a few hundred apps at a time as it
        is read, then drops the apps it did not list (raises on failure: what was read so
        far stays, as true as anything an event brought)."""
        started = self._clock()
        with self._lock:
            known = dict(self._apps)  # a version read before is packed once, not each time
            stale_then = set(self._stale)
        # Each app packed as it is read (the 10,000 parsed apps never exist at once) and put
        # in place of the one it replaces a batch at a time, which goes then: a resync during
        # a release held every app twice (10 MB more for a second, every few seconds). Not
        # one lock per app: readers waiting for the lock would wait for the whole resync.
        changed: set[str] = set()
        refused: set[str] = set()
        batch: dict[str, tuple[liveapps.Held, liveapps.Held | None]] = {}
        for app in self._client.iter_apps(embed=marathon.LIVE_EMBED):
            app_id = liveapps.absolute(app.get("id"))
            before = known.pop(app_id, None)
            held = liveapps.Held.of(app, known=before)
            batch[app_id] = (held, before)
            if before is None or before.version != held.version:
                changed.add(app_id)
            if len(batch) >= _RESYNC_BATCH:
                with self._lock:
                    refused |= self._put_read(batch)
                batch.clear()
        with self._lock:
            refused |= self._put_read(batch)
            for app_id in known:  # not listed any more
                self._apps.pop(app_id, None)
            changed |= known.keys()
            self.changes += 1
            self._synced_at = self._clock()
            self._resync_took = self._synced_at - started
            # What events marked since the read began may be newer than the read: kept, and
            # so are the apps an event overtook (marked before the read began, say).
            self._stale -= stale_then
            self._stale |= refused
            current = dict(self._apps)
        self.resyncs += 1
        telemetry.LIVE_RESYNCS.inc()
        memory.settle()
        if changed and self._on_change is not None:
            self._on_change(frozenset(changed))
        return liveapps.LiveApps(current)

    def _put_read(self, read: Mapping[str, tuple[liveapps.Held, liveapps.Held | None]]) -> set[str]:
        """Put apps read from Marathon in the cache (the lock held), each given with what the
        cache held when the read began. An event that came meanwhile with a newer version
        wins: the read began before that write (a resync takes a second or two at 10,000
        apps, and a release writes many apps a second), and putting it back would show
        live as it was before the write until the next resync: drift, corrected for nothing.
        Returns the apps refused, marked to be read once more (their tasks and the rest)."""
        refused = set()
        for app_id, (held, before) in read.items():
            current = self._apps.get(app_id)
            if current is not None and current is not before and liveapps.newer(current, held):
                refused.add(app_id)
                continue
            self._apps[app_id] = held
        if refused:
            self._stale |= refused
            self._stale_event.set()
        return refused

    # -- the stream ------------------------------------------------------------------------

    def _follow(self) -> None:
        backoff = scheduler.Backoff(base=0.5, cap=30.0)
        while not self._stopping.is_set():
            heard = self._clock()
            try:
                # Marathon sends no keep-alive: a stream quiet for the resync interval is
                # reconnected, and the reconnection is the periodic resync.
                for event in self._client.events(event_types=FOLLOWED,
                                                 idle_timeout=self._resync_interval):
                    heard = self._clock()
                    if self._stopping.is_set():
                        break
                    if not self._following:
                        self._attached()
                        backoff.succeeded()
                    self._on_event(event)
            except marathon.MarathonError as e:
                if self._following and self._clock() - heard >= self._resync_interval:
                    # Quiet for the whole interval: reconnect at once, no alarm.
                    self._detached(e.message, quiet=True)
                    continue
                self._detached(e.message)
                if self._stopping.is_set():
                    break
                delay = backoff.failed()
                log.debug("event stream ended (%s); reconnecting in %.1fs", e.message, delay)
                self._stopping.wait(delay)
            except Exception as e:  # the thread must survive; logged
                self._detached(f"{type(e).__name__}: {e}")
                if self._stopping.is_set():
                    break
                log.exception("event stream failed unexpectedly")
                self._stopping.wait(backoff.failed())
            else:
                self._detached("the event stream closed")

    def _attached(self) -> None:
        """A new connection: whatever happened during the gap is read in one resync."""
        try:
            self.resync()
        except marathon.MarathonError as e:
            raise marathon.MarathonUnavailable(f"resync after attaching: {e.message}") from e
        with self._lock:
            self._following = True
            self._stream_error = None
        if self._stopping.is_set():
            return
        telemetry.event_stream(self._environment, up=True)
        telemetry.event(log, "following marathon's event stream", apps=len(self._apps))

    def _detached(self, why: str, *, quiet: bool = False) -> None:
        with self._lock:
            was = self._following
            self._following = False
            self._stream_error = why
        if quiet:
            log.debug("event stream quiet for the resync interval: reconnecting")
            return
        if self._stopping.is_set():
            return  # stopped on purpose: its series are withdrawn, nothing to report
        telemetry.event_stream(self._environment, up=False)
        if was:
            telemetry.event(log, "marathon event stream lost: polling until it is back",
                            level=logging.WARNING, reason=why)

    def _on_event(self, event: marathon.Event) -> None:
        telemetry.LIVE_EVENTS.labels(type=event.event_type).inc()
        data = event.data
        if event.event_type == "api_post_event":
            self._api_post(data)
        elif event.event_type == "app_terminated_event":
            app_id = liveapps.absolute(data.get("appId"))
            with self._lock:
                self._apps.pop(app_id, None)
                self.changes += 1
        elif event.event_type.startswith("deployment_"):
            self._mark_stale(_plan_apps(data.get("plan")))
        elif "appId" in data:
            self._mark_stale((liveapps.absolute(data.get("appId")),))

    def _api_post(self, data: model.JSON) -> None:
        definition = data.get("appDefinition")
        if not isinstance(definition, dict):
            return
        app_id = liveapps.absolute(definition.get("id"))
        with self._lock:
            before = self._apps.get(app_id)
            # The event has the definition only: tasks and the rest stay until refetched.
            view = before.status_view() if before is not None else {}
            kept = {k: view[k] for k in _RUNTIME if k in view}
            self._apps[app_id] = liveapps.Held.of({**definition, **kept}, from_event=True)
            self.changes += 1
            self._stale.add(app_id)
        self._stale_event.set()
        version = definition.get("version")
        self._on_write(app_id, events.Attribution(
            client_ip=str(data.get("clientIp", "")), uri=str(data.get("uri", "")),
            at=str(data.get("timestamp", "")), version=str(version) if version else None))

    def _mark_stale(self, app_ids: Iterable[str]) -> None:
        with self._lock:
            self._stale.update(a for a in app_ids if a)
        self._stale_event.set()

    def refresh(self, app_ids: Iterable[str]) -> None:
        """Read these apps now (the controller just deployed them): the status a reader sees
        after a run is the run's outcome, not the last event before it."""
        wanted = {a for a in app_ids if a}
        if not wanted:
            return
        try:
            self._refetch_apps(wanted)
        except marathon.MarathonError as e:
            log.debug("refreshing %d app(s) failed: %s", len(wanted), e.message)
            self._mark_stale(wanted)

    # -- refetching apps the events said changed --------------------------------------------

    def _refetch(self) -> None:
        while not self._stopping.is_set():
            self._stale_event.wait()
            self._stopping.wait(_SETTLE)
            self._stale_event.clear()
            with self._lock:
                stale, self._stale = self._stale, set()
            if not stale or self._stopping.is_set():
                continue
            try:
                self._refetch_apps(stale)
            except marathon.MarathonError as e:
                log.debug("refetching %d app(s) failed: %s", len(stale), e.message)
                with self._lock:
                    self._stale.update(stale)
                self._stopping.wait(1.0)
                self._stale_event.set()
            except Exception:
                log.exception("refetching apps failed unexpectedly")

    def _refetch_apps(self, stale: set[str]) -> None:
        if len(stale) > _REFETCH_ALL_ABOVE:
            with self._lock:
                gap = max(_RESYNC_GAP, 10 * self._resync_took)
                wait = (self._synced_at or 0.0) + gap - self._clock()
            if wait > 0:
                self._stopping.wait(wait)
            self.resync()
            return
        changed = set()
        for app_id in sorted(stale):
            with self._lock:
                before = self._apps.get(app_id)
            try:
                app: model.JSON | None = self._client.get_app(app_id, embed=marathon.LIVE_EMBED_ONE)
            except marathon.NotFound:
                app = None
            held = None if app is None else liveapps.Held.of(app)
            with self._lock:
                if held is None:
                    self._apps.pop(app_id, None)
                else:
                    self._put_read({app_id: (held, before)})
                self.changes += 1
            if (before.version if before else None) != (held.version if held else None):
                changed.add(app_id)
        if changed and self._on_change is not None:
            self._on_change(frozenset(changed))


_RUNTIME = ("tasks", "deployments", "lastTaskFailure", "tasksStaged", "tasksRunning",
            "tasksHealthy", "tasksUnhealthy")
"""What ``GET /v2/apps`` adds to a definition and ``api_post_event`` does not carry."""


def _plan_apps(plan: object) -> list[str]:
    """The app ids of a deployment plan's steps (``raml.DeploymentPlan``)."""
    if not isinstance(plan, dict):
        return []
    found = [liveapps.absolute(plan_app) for plan_app in plan.get("affectedApps") or ()]
    for step in plan.get("steps") or ():
        for action in (step or {}).get("actions") or ():
            if isinstance(action, dict) and action.get("app"):
                found.append(liveapps.absolute(action["app"]))
    return found
