"""Telemetry, the one place for global state: JSON logs, Prometheus metrics, Sentry.

Logs: one JSON object per line on stdout (``{"at", "level", "logger", "event", ...fields}``),
through stdlib logging and python-json-logger (the only module that imports it); :func:`event`
adds fields. Every line goes through :func:`reconciler.core.redact.mask_text` with the
configured secrets.

Metrics live on a dedicated :data:`REGISTRY` (never the process-wide default, so that tests
and the dev cluster never share counters by accident); ``/metrics`` serves
:func:`metrics_text`. All names start with ``reconciler_``.

Sentry is initialised only when a DSN is set; ``before_send`` masks the secrets in every
string of an event.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import prometheus_client as prom
import pythonjsonlogger.core
import pythonjsonlogger.json

from reconciler.core import model, redact, status

REGISTRY = prom.CollectorRegistry(auto_describe=True)

APPS = prom.Gauge("reconciler_apps", "Managed apps by state word", ["state"], registry=REGISTRY)
_APP_INFO_HELP = "1 per managed app, labelled with its sync and health status (Argo CD style)"
_APP_CONDITION_HELP = "1 while the app has the condition (Quarantined, Drifted, Blocked)"
_app_series: dict[str | None, tuple[bytes, bytes]] = {}
"""``reconciler_app_info`` and ``reconciler_app_condition`` samples by environment (None: the
one environment), rendered once per status snapshot (:func:`publish_app_statuses`):
formatting 10,000 apps' series on every scrape would cost a scrape a quarter of a second."""
_app_counts: dict[str | None, collections.Counter[model.AppState]] = {}
"""Apps by state word, by environment: ``reconciler_apps`` is their sum."""
_app_lock = threading.Lock()
"""Each environment's status board publishes from its own thread."""
OPEN_DRIFT = prom.Gauge("reconciler_open_drift", "Apps whose drift is open or flapping",
                        registry=REGISTRY)
DRIFT_DETECTED = prom.Counter("reconciler_drift_detected_total",
                              "New drift records, by kind (scale, config)", ["kind"],
                              registry=REGISTRY)
DRIFT_ACTIONS = prom.Counter("reconciler_drift_actions_total",
                             "What was done about drift (corrected, reported, flapping)",
                             ["action"], registry=REGISTRY)
RECONCILE_SECONDS = prom.Histogram(
    "reconciler_reconcile_duration_seconds", "Duration of one reconcile, by trigger",
    ["trigger"], registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
RECONCILES = prom.Counter("reconciler_reconciles_total", "Reconciles by trigger and outcome",
                          ["trigger", "outcome"], registry=REGISTRY)
DEPLOYMENTS = prom.Counter("reconciler_deployments_total", "Applied changes by outcome",
                           ["outcome"], registry=REGISTRY)
ROLLBACKS = prom.Counter("reconciler_rollbacks_total", "Automatic rollbacks by outcome",
                         ["outcome"], registry=REGISTRY)
GIT_REQUESTS = prom.Counter("reconciler_git_requests_total", "Polls of the config repo",
                            registry=REGISTRY)
GIT_ERRORS = prom.Counter("reconciler_git_errors_total", "Failed polls of the config repo",
                          registry=REGISTRY)
MARATHON_REQUESTS = prom.Counter("reconciler_marathon_requests_total",
                                 "Requests sent to Marathon", registry=REGISTRY)
MARATHON_ERRORS = prom.Counter("reconciler_marathon_errors_total",
                               "Marathon calls that failed (after retries)", registry=REGISTRY)
REGISTRY_CHECKS = prom.Counter("reconciler_registry_checks_total",
                               "Registry watch checks, by result (ok, failed)", ["result"],
                               registry=REGISTRY)
REGISTRY_ERRORS = prom.Counter("reconciler_registry_errors_total",
                               "Registry watch failures: a registry down or refusing access, or "
                               "the config repo unreadable or refusing the push", ["kind"],
                               registry=REGISTRY)
REGISTRY_BUMPS = prom.Counter("reconciler_registry_bumps_total",
                              "Bump commits (or proposal branches) pushed, by image and action",
                              ["image", "action"], registry=REGISTRY)
PROMOTIONS = prom.Counter("reconciler_promotions_total",
                          "Promotion requests by target environment and decision (promote, "
                          "wait, refuse, nothing to promote)", ["target", "decision"],
                          registry=REGISTRY)
ENVIRONMENT_APPS = prom.Gauge("reconciler_environment_apps",
                              "Apps by environment and state word (with RECONCILER_ENVIRONMENTS)",
                              ["environment", "state"], registry=REGISTRY)
SYNCED_REVISION = prom.Info("reconciler_synced_revision", "The revision last applied",
                            registry=REGISTRY)
CHECKS = prom.Counter("reconciler_checks_total",
                      "Polls, drift checks and syncs that found nothing to change (not runs)",
                      ["kind"], registry=REGISTRY)
LAST_CHECK = prom.Gauge("reconciler_last_check_timestamp_seconds",
                        "When the last check that found nothing to change ended (UNIX seconds)",
                        registry=REGISTRY)
LEADER = prom.Gauge("reconciler_leader",
                    "1 while this replica leads (may write to Marathon), else 0",
                    registry=REGISTRY)
LEADER_TERM = prom.Gauge("reconciler_leader_term",
                         "The leadership term this replica last won (0: never led)",
                         registry=REGISTRY)
LAST_SYNC = prom.Gauge("reconciler_last_sync_timestamp_seconds",
                       "When the last reconcile finished (UNIX seconds)", registry=REGISTRY)

EVENT_STREAM_UP = prom.Gauge(
    "reconciler_event_stream_up",
    "1 while Marathon's event stream is followed; 0: drift is found by polling only",
    registry=REGISTRY)
ENVIRONMENT_SYNCED_REVISION = prom.Info(
    "reconciler_environment_synced_revision",
    "The revision last applied, by environment (with RECONCILER_ENVIRONMENTS)",
    ["environment"], registry=REGISTRY)
ENVIRONMENT_LAST_SYNC = prom.Gauge(
    "reconciler_environment_last_sync_timestamp_seconds",
    "When the environment's last reconcile finished (with RECONCILER_ENVIRONMENTS)",
    ["environment"], registry=REGISTRY)
ENVIRONMENT_EVENT_STREAM_UP = prom.Gauge(
    "reconciler_environment_event_stream_up",
    "1 while the environment's Marathon event stream is followed (with "
    "RECONCILER_ENVIRONMENTS)", ["environment"], registry=REGISTRY)
_streams_up: dict[str, bool] = {}
_last_syncs: dict[str, float] = {}
_environment_lock = threading.Lock()
LIVE_EVENTS = prom.Counter("reconciler_marathon_events_total",
                           "Events read from Marathon's event stream, by type", ["type"],
                           registry=REGISTRY)
LIVE_RESYNCS = prom.Counter("reconciler_live_resyncs_total",
                            "Full reads of Marathon's apps into the live cache (GET /v2/apps)",
                            registry=REGISTRY)

_secrets: list[str] = []


def set_secrets(secrets: Sequence[str]) -> None:
    """The secret strings masked in every log line and Sentry event from now on."""
    _secrets[:] = [s for s in secrets if s]


def scrub(text: str) -> str:
    return redact.mask_text(text, _secrets)


class _Encoder(pythonjsonlogger.json.JsonEncoder):
    def format_datetime_obj(self, o: dt.time | dt.date | dt.datetime) -> str:
        # Milliseconds are enough to order lines and shorter to read.
        return o.isoformat(timespec="milliseconds") if isinstance(o, dt.datetime) \
            else o.isoformat()


class JsonFormatter(pythonjsonlogger.json.JsonFormatter):
    """python-json-logger's formatter with our field names (``at``, ``level``, ``logger``,
    ``event``, then the fields of :func:`event`, ``error`` for an exception); secrets masked."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"], timestamp="at", json_encoder=_Encoder,
            rename_fields={"levelname": "level", "name": "logger", "message": "event",
                           "exc_info": "error"},
            # uvicorn repeats each message with terminal colours as an extra.
            reserved_attrs=[*pythonjsonlogger.core.RESERVED_ATTRS, "color_message"])

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        fields = log_data.pop("fields", None) or {}
        error = log_data.pop("error", None)
        entry = {"at": log_data.pop("at"), **log_data, **fields}
        entry["level"] = str(log_data["level"]).lower()
        if error is not None:
            entry["error"] = error
        return entry

    def serialize_log_record(self, log_data: dict[str, Any]) -> str:
        # Masked in the final text, so that a secret inside any value's str() is caught too.
        return scrub(super().serialize_log_record(log_data))


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stdout as JSON (replacing handlers set before)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic says which dialect it migrates each time the record store opens: not news.
    for noisy in ("urllib3", "git", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # A skipped run means a burst was coalesced, which is the point: not worth a warning.
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO,
          **fields: Any) -> None:
    """Log ``name`` with structured ``fields`` (one JSON line)."""
    logger.log(level, name, extra={"fields": fields})


def metrics_text() -> tuple[bytes, str]:
    """The exposition of :data:`REGISTRY` and the app series, and its content type."""
    with _app_lock:
        series = list(_app_series.values())
    apps = b""
    if series:  # each family's samples together, as the text format asks
        apps = (_APP_INFO_HEAD + b"".join(info for info, _ in series)
                + _APP_CONDITION_HEAD + b"".join(condition for _, condition in series))
    return prom.generate_latest(REGISTRY) + apps, prom.CONTENT_TYPE_LATEST


# -- Sentry --------------------------------------------------------------------------------


def init_sentry(dsn: str | None, *, release: str | None = None) -> bool:
    """Start Sentry when a DSN is given; True when it was started."""
    if not dsn:
        return False
    # Imported here: without a DSN the controller never loads Sentry (about 8 MB).
    import sentry_sdk
    from sentry_sdk.integrations import atexit as sentry_atexit
    from sentry_sdk.integrations import dedupe as sentry_dedupe
    from sentry_sdk.integrations import excepthook as sentry_excepthook
    from sentry_sdk.integrations import logging as sentry_logging
    from sentry_sdk.integrations import threading as sentry_threading

    # Only what we use: error logs and uncaught errors become events. Not the defaults that
    # patch the standard library (http.client, subprocess): breadcrumbs of every request's URL
    # are a way for secrets out, and that patch crashed a test process once (a segfault in
    # its scope handling under load).
    sentry_sdk.init(dsn=dsn, release=release, before_send=_before_send,
                    traces_sample_rate=0,  # personal data is off by default
                    default_integrations=False, auto_enabling_integrations=False,
                    integrations=[sentry_logging.LoggingIntegration(),
                                  sentry_excepthook.ExcepthookIntegration(),
                                  sentry_threading.ThreadingIntegration(),
                                  sentry_dedupe.DedupeIntegration(),
                                  sentry_atexit.AtexitIntegration()])
    return True


def capture_message(message: str, level: str = "info", *,
                    tags: Mapping[str, str] | None = None) -> None:
    sentry = sys.modules.get("sentry_sdk")  # None: Sentry was never started
    if sentry is not None:
        sentry.capture_message(scrub(message), level=level, tags=dict(tags) if tags else None)


def capture_exception(error: BaseException) -> None:
    sentry = sys.modules.get("sentry_sdk")
    if sentry is not None:
        sentry.capture_exception(error)


def _before_send(event: Any, hint: Any) -> Any:
    return scrub_value(event)


def scrub_value(value: Any) -> Any:
    """``value`` with the secrets masked in every string it holds (a Sentry event)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


def publish_app_statuses(statuses: Sequence[status.AppStatus], *,
                         environment: str | None = None) -> None:
    """Every app's status as gauges, replacing the previous ones of ``environment`` (apps
    come and go; None: the one environment). With several environments the app series carry
    an ``environment`` label (the same app id may run in each), ``reconciler_apps`` sums
    them and ``reconciler_environment_apps`` counts each."""
    where = f'environment="{_label(environment)}",' if environment is not None else ""
    info: list[str] = []
    conditions: list[str] = []
    for s in statuses:
        app = _label(s.app_id)
        info.append(f'reconciler_app_info{{app="{app}",{where}health_status="{_label(s.health)}",'
                    f'state="{_label(str(s.state))}",sync_status="{_label(str(s.sync))}"}} 1.0\n')
        conditions.extend(f'reconciler_app_condition{{app="{app}",{where}'
                          f'condition="{_label(str(c.type))}"}} 1.0\n' for c in s.conditions)
    counts = collections.Counter(s.state for s in statuses)
    with _app_lock:
        _app_series[environment] = ("".join(info).encode(), "".join(conditions).encode())
        _app_counts[environment] = counts
        _set_app_counts(environment)


def withdraw_app_statuses(environment: str) -> None:
    """``environment``'s app series are gone (its controller stopped)."""
    with _app_lock:
        _app_series.pop(environment, None)
        _app_counts.pop(environment, None)
        _set_app_counts(environment)


def _set_app_counts(environment: str | None) -> None:
    counts = _app_counts.get(environment)
    for state in model.AppState:
        APPS.labels(state=str(state)).set(sum(c[state] for c in _app_counts.values()))
        if environment is None:
            continue
        if counts is None:
            ENVIRONMENT_APPS.remove(environment, str(state))  # absent already: nothing
        else:
            ENVIRONMENT_APPS.labels(environment=environment, state=str(state)).set(
                counts[state])


_APP_INFO_HEAD = (f"# HELP reconciler_app_info {_APP_INFO_HELP}\n"
                  "# TYPE reconciler_app_info gauge\n").encode()
_APP_CONDITION_HEAD = (f"# HELP reconciler_app_condition {_APP_CONDITION_HELP}\n"
                       "# TYPE reconciler_app_condition gauge\n").encode()


def _label(value: str) -> str:
    """A label value escaped as the text exposition format asks."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


# -- what one controller says of itself, by environment -------------------------------------
#
# With several environments (RECONCILER_ENVIRONMENTS) one process runs a controller for each:
# a plain gauge written by each in turn would show whichever wrote last. Each environment has
# its labelled series; the plain ones say what holds for all of them (every stream up, the
# newest sync) and name no revision.


def synced(environment: str | None, *, revision: str | None, at: float) -> None:
    """A reconcile finished at ``at``; ``revision`` is what it applied (None: a drift
    correction, which applies no new revision)."""
    if environment is None:
        if revision is not None:
            SYNCED_REVISION.info({"revision": revision})
        LAST_SYNC.set(at)
        return
    if revision is not None:
        ENVIRONMENT_SYNCED_REVISION.labels(environment=environment).info({"revision": revision})
    ENVIRONMENT_LAST_SYNC.labels(environment=environment).set(at)
    with _environment_lock:
        _last_syncs[environment] = at
        LAST_SYNC.set(max(_last_syncs.values()))


def event_stream(environment: str | None, *, up: bool) -> None:
    """Whether Marathon's event stream (of ``environment``) is followed."""
    if environment is None:
        EVENT_STREAM_UP.set(1 if up else 0)
        return
    ENVIRONMENT_EVENT_STREAM_UP.labels(environment=environment).set(1 if up else 0)
    with _environment_lock:
        _streams_up[environment] = up
        EVENT_STREAM_UP.set(1 if all(_streams_up.values()) else 0)


def forget_environment(environment: str) -> None:
    """``environment``'s controller stopped: its series go, the plain ones follow the rest."""
    for family in (ENVIRONMENT_SYNCED_REVISION, ENVIRONMENT_LAST_SYNC,
                   ENVIRONMENT_EVENT_STREAM_UP):
        with contextlib.suppress(KeyError):
            family.remove(environment)
    with _environment_lock:
        _streams_up.pop(environment, None)
        _last_syncs.pop(environment, None)
