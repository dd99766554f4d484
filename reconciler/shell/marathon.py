"""The Marathon client: the only module that imports ``requests`` and ``sseclient``.

A small typed client over Marathon's REST API v2. Apps are plain JSON dicts, never model
objects, so nothing is lost in a round-trip (a diff must see every field Marathon returns).

Exception tree (what each one means for the caller)::

    MarathonError                 base; carries Marathon's ``message`` and ``details``
    ├── MarathonUnavailable       connection refused/timed out or 5xx on every URL: retry later
    ├── Unauthorized              401/403: stop and alert, credentials are wrong
    ├── NotFound                  404: the app/deployment does not exist
    ├── Conflict                  409: locked by deployments (``.deployment_ids``)
    └── Unprocessable             422 (or 400): Marathon rejected the definition (``.details``)

    Fenced                        not a MarathonError: this process may not write now (it
                                  does not lead); nothing was sent, and no handler of
                                  Marathon's errors swallows it

Fencing: a client built with a ``fence`` calls it before every attempt of every write (each
URL, each retry after its backoff sleep); the fence raises :class:`Fenced` or returns headers
that go with the write (which replica, which leadership term). A write already on the wire
is bounded by the connect and read timeouts (:func:`write_stop_seconds`).

Retries: idempotent calls (GET, PUT, DELETE) are retried by urllib3's ``Retry`` on connection
errors, read timeouts and 502/503/504 with exponential backoff. POST is retried only when the
request never left (connection refused, TLS handshake): after a read timeout or a broken
answer it may have been applied, so it is neither retried nor sent to another URL. When one
base URL stays down, the next one is tried, and the last one that answered is tried first next
time (Marathon standby masters proxy to the leader, so any live one will do; a standby that
cannot reach the leader answers 503, which fails over too).

Credentials come from :class:`ClientSettings` only (built by :mod:`reconciler.shell.config`,
the one place that reads the environment); they never appear in a message, a log line or a
``repr``. A token wins over basic auth when both are set.

Longer than our modules usually are, on purpose: it is the one boundary to Marathon (an
import-linter contract says so), and its errors, retries, failover and endpoints read best
together.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.adapters
import sseclient
import urllib3.exceptions
import urllib3.util.retry

from reconciler.shell import answers

# The errors and the answer's types are the client's words: callers name them through here.
from reconciler.shell.marathon_errors import Conflict as Conflict
from reconciler.shell.marathon_errors import DeploymentRef as DeploymentRef
from reconciler.shell.marathon_errors import Fenced as Fenced
from reconciler.shell.marathon_errors import MarathonError as MarathonError
from reconciler.shell.marathon_errors import MarathonUnavailable as MarathonUnavailable
from reconciler.shell.marathon_errors import NotFound as NotFound
from reconciler.shell.marathon_errors import Unauthorized as Unauthorized
from reconciler.shell.marathon_errors import Unprocessable as Unprocessable
from reconciler.shell.marathon_errors import (
    deployment_ref,
    error_for,
    field_of,
    object_of,
    objects_of,
    unreadable,
)

JSON = dict[str, Any]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
LIVE_EMBED = ("apps.tasks", "apps.deployments", "apps.lastTaskFailure")
"""What ``list_apps`` embeds to judge health: tasks, running deployments, last failure."""
LIVE_EMBED_ONE = ("app.tasks", "app.deployments", "app.lastTaskFailure")
"""The same for one app (``GET /v2/apps/{id}``)."""


Fence = Callable[[], Mapping[str, str]]
"""Called before each write attempt: raises :class:`Fenced`, or returns headers to send."""


def write_stop_seconds(timeout: float) -> float:
    """The longest a write attempt already past its fence check can take: connecting, then
    waiting for the answer (the fence is checked again before any retry)."""
    return 2 * timeout


@dataclass(frozen=True)
class ClientSettings:
    urls: tuple[str, ...]
    """One or more Marathon base URLs; the client fails over in order."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    """DC/OS-style ACS token, sent as ``Authorization: token=<token>``."""
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify_tls: bool = True
    timeout: float = 10.0
    retries: int = 3
    """Retries for idempotent calls (GET, PUT, DELETE) on connection errors and 5xx."""
    backoff: float = 0.5
    extra_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """One server-sent event from ``/v2/events``: its ``eventType`` and its JSON body."""

    event_type: str
    data: JSON


def _quote_id(app_id: str) -> str:
    """``/dirac/fts`` -> ``dirac/fts`` with each segment URL-quoted."""
    return "/".join(urllib.parse.quote(part, safe="") for part in app_id.strip("/").split("/"))


class _CountingRetry(urllib3.util.retry.Retry):
    """urllib3's ``Retry`` that reports each retry it grants, so every HTTP request is counted."""

    on_retry: Any = None
    before_attempt: Any = None
    """Called with the method after each backoff sleep, before the retry goes out (the
    fence of a write)."""

    def new(self, **kw: Any) -> _CountingRetry:
        retry = super().new(**kw)
        retry.on_retry = self.on_retry
        retry.before_attempt = self.before_attempt
        return retry

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        if self.before_attempt is not None and self.history:
            self.before_attempt(self.history[-1].method)

    def increment(self, *args: Any, **kwargs: Any) -> _CountingRetry:
        retry = super().increment(*args, **kwargs)  # raises when retries are exhausted
        if self.on_retry is not None:
            self.on_retry()
        return retry


class MarathonClient:
    """Marathon's REST API v2 over one ``requests`` session shared by threads."""

    def __init__(
        self, settings: ClientSettings, *, session: requests.Session | None = None,
        fence: Fence | None = None,
    ) -> None:
        if not settings.urls:
            raise ValueError("ClientSettings.urls is empty")
        self._settings = settings
        self._fence = fence
        self._session = session or requests.Session()
        self._preferred = 0
        self._lock = threading.Lock()
        self._request_count = 0
        retry = _CountingRetry(
            total=settings.retries,
            # With standby URLs, trying the next one is the retry for a refused connection.
            connect=settings.retries if len(settings.urls) == 1 else 0,
            read=settings.retries,
            status=settings.retries,
            backoff_factor=settings.backoff,
            status_forcelist=(502, 503, 504),
            allowed_methods=_IDEMPOTENT,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        retry.on_retry = self._count_request
        retry.before_attempt = self._check_fence
        adapter = requests.adapters.HTTPAdapter(max_retries=retry, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        if settings.token:
            self._session.headers["Authorization"] = f"token={settings.token}"
        elif settings.username is not None and settings.password is not None:
            self._session.auth = (settings.username, settings.password)
        self._session.headers["Accept"] = "application/json"
        self._session.headers.update(settings.extra_headers)
        # Passed with every request: requests lets REQUESTS_CA_BUNDLE override a session's.
        self._verify: bool | str = settings.ca_bundle or settings.verify_tls
        if settings.client_cert:
            self._session.cert = (
                (settings.client_cert, settings.client_key)
                if settings.client_key
                else settings.client_cert
            )

    def _check_fence(self, method: str | None) -> dict[str, str]:
        """Raise :class:`Fenced` when a write may not go out now; the headers it goes with."""
        if self._fence is None or method in ("GET", "HEAD", "OPTIONS"):
            return {}
        return dict(self._fence())

    def ensure_may_write(self) -> None:
        """Raise :class:`Fenced` when writes are fenced off (waiters check it, so that a
        replica that lost leadership stops waiting and leaves the deployment to the leader)."""
        self._check_fence("PUT")

    def _count_request(self) -> None:
        with self._lock:
            self._request_count += 1

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (benchmarks and metrics read it)."""
        return self._request_count

    @property
    def urls(self) -> tuple[str, ...]:
        return self._settings.urls

    # -- transport ---------------------------------------------------------------------

    def _ordered_urls(self) -> list[str]:
        urls = list(self._settings.urls)
        start = self._preferred % len(urls)
        return urls[start:] + urls[:start]

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
        stream: bool = False,
        timeout: float | tuple[float, float | None] | None = None,
        accept: str | None = None,
    ) -> requests.Response:
        """Send to the first base URL that answers; raise the typed error for its status."""
        last_error: Exception | None = None
        for base in self._ordered_urls():
            fenced = self._check_fence(method)
            self._count_request()
            try:
                response = self._session.request(
                    method,
                    base + path,
                    params=params,
                    data=json.dumps(body) if body is not None else None,
                    headers={**(_headers(body=body is not None, accept=accept) or {}),
                             **fenced} or None,
                    timeout=timeout if timeout is not None else self._settings.timeout,
                    stream=stream,
                    verify=self._verify,
                )
            except requests.RequestException as e:
                if method not in _IDEMPOTENT and not _never_sent(e):
                    raise MarathonUnavailable(
                        f"{method} {path}: no complete answer from Marathon, the change may or "
                        f"may not have been applied: {_describe(e)}"
                    ) from e
                # Connection refused, TLS failure, timeout: this URL is unusable now.
                last_error = e
                continue
            if response.status_code >= 500:
                last_error = _error_for(response)
                response.close()
                continue
            self._preferred = self._settings.urls.index(base)
            if response.status_code >= 400:
                error = _error_for(response)
                response.close()
                raise error
            return response
        message = f"no Marathon answered {method} {path} (tried {len(self._settings.urls)} URL(s))"
        if last_error is not None:
            message += f": {_describe(last_error)}"
        raise MarathonUnavailable(message) from last_error

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer as JSON, read bounded (:mod:`answers`)."""
        response = self._send(method, path, stream=True, **kwargs)
        with response:
            try:
                return answers.json_of(response.iter_content(answers.CHUNK),
                                       declared=response.headers.get("Content-Length"))
            except answers.Unreadable as e:
                raise unreadable(method, path, e, status=response.status_code) from e
            except requests.RequestException as e:
                raise MarathonUnavailable(f"{method} {path}: the answer was cut short: "
                                          f"{_describe(e)}") from e

    # -- API ---------------------------------------------------------------------------

    def ping(self) -> None:
        self._send("GET", "/ping").close()

    def info(self) -> JSON:
        return object_of(self._json("GET", "/v2/info"), what="GET /v2/info")

    def identity(self) -> str:
        """Who this Marathon is, for tying records to it: its Mesos ``frameworkId``.

        The framework id is what Mesos gave Marathon at its first registration; Marathon
        keeps it (in ZooKeeper) across restarts and leader elections, and no two Marathons
        share one. ``name`` is ``marathon`` on nearly every cluster and ``leader`` changes
        at each election, so neither tells Marathons apart. Raises :class:`MarathonError`
        while Marathon has no framework id yet (not registered with Mesos).
        """
        framework = self.info().get("frameworkId")
        if not isinstance(framework, str) or not framework:
            raise MarathonError("GET /v2/info: Marathon has no frameworkId yet (not "
                                "registered with Mesos): cannot tell which Marathon this is")
        return framework

    def list_apps(self, *, prefix: str | None = None, embed: tuple[str, ...] = ()) -> list[JSON]:
        """All apps in one request (``GET /v2/apps?id=prefix&embed=...``)."""
        return list(self.iter_apps(prefix=prefix, embed=embed))

    def iter_apps(self, *, prefix: str | None = None, embed: tuple[str, ...] = ()
                  ) -> Iterator[JSON]:
        """All apps in one request, each as soon as it is read (:func:`answers.apps_of`):
        the caller may keep each in a smaller form before the next is built."""
        params: list[tuple[str, str]] = [("embed", e) for e in embed]
        if prefix and prefix.strip("/"):
            params.append(("id", prefix))
        response = self._send("GET", "/v2/apps", params=params, stream=True)
        with response:
            try:
                for app in answers.apps_of(response.iter_content(answers.CHUNK),
                                           declared=response.headers.get("Content-Length")):
                    if not isinstance(app, dict):
                        raise MarathonError("GET /v2/apps: Marathon answered nonsense: expected "
                                            f"a list of objects, got {answers.shape(app)} in it")
                    yield app
            except answers.Unreadable as e:
                raise unreadable("GET", "/v2/apps", e, status=response.status_code) from e
            except requests.RequestException as e:
                raise MarathonUnavailable(f"GET /v2/apps: the answer was cut short: "
                                          f"{_describe(e)}") from e

    def get_app(self, app_id: str, *, embed: tuple[str, ...] = ()) -> JSON:
        params = [("embed", e) for e in embed]
        path = f"/v2/apps/{_quote_id(app_id)}"
        answer = self._json("GET", path, params=params)
        return object_of(field_of(answer, "app", what=f"GET {path}"), what=f"GET {path}: app")

    def create_app(self, definition: JSON) -> DeploymentRef:
        return deployment_ref(self._json("POST", "/v2/apps", body=definition))

    def update_app(self, app_id: str, definition: JSON, *, force: bool = False) -> DeploymentRef:
        """Full replacement (``PUT /v2/apps/{id}?partialUpdate=false``): a rolling upgrade."""
        params = {"partialUpdate": "false", "force": str(force).lower()}
        return deployment_ref(
            self._json("PUT", f"/v2/apps/{_quote_id(app_id)}", params=params, body=definition)
        )

    def scale_app(self, app_id: str, instances: int, *, force: bool = False) -> DeploymentRef:
        params = {"force": str(force).lower()}
        return deployment_ref(
            self._json(
                "PUT", f"/v2/apps/{_quote_id(app_id)}", params=params,
                body={"instances": instances},
            )
        )

    def delete_app(self, app_id: str, *, force: bool = False) -> DeploymentRef:
        params = {"force": str(force).lower()}
        return deployment_ref(self._json("DELETE", f"/v2/apps/{_quote_id(app_id)}", params=params))

    def restart_app(self, app_id: str, *, force: bool = False) -> DeploymentRef:
        # POST /restart is idempotent in effect (a new restart deployment) but not retried.
        params = {"force": str(force).lower()}
        return deployment_ref(
            self._json("POST", f"/v2/apps/{_quote_id(app_id)}/restart", params=params)
        )

    def list_versions(self, app_id: str) -> list[str]:
        path = f"/v2/apps/{_quote_id(app_id)}/versions"
        versions = field_of(self._json("GET", path), "versions", what=f"GET {path}")
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise MarathonError(f"GET {path}: Marathon answered nonsense: versions is not a "
                                f"list of strings")
        return versions

    def get_app_version(self, app_id: str, version: str) -> JSON:
        path = f"/v2/apps/{_quote_id(app_id)}/versions/{urllib.parse.quote(version, safe='')}"
        return object_of(self._json("GET", path), what=f"GET {path}")

    def list_deployments(self) -> list[JSON]:
        return objects_of(self._json("GET", "/v2/deployments"), what="GET /v2/deployments")

    def cancel_deployment(self, deployment_id: str, *, force: bool = False) -> DeploymentRef | None:
        """Without force Marathon starts a rollback deployment (returned); with force, None."""
        path = f"/v2/deployments/{urllib.parse.quote(deployment_id, safe='')}"
        response = self._send("DELETE", path, params={"force": str(force).lower()})
        if force or not response.content:
            response.close()
            return None
        return deployment_ref(response.json())

    def list_tasks(self, app_id: str) -> list[JSON]:
        tasks: list[JSON] = self._json("GET", f"/v2/apps/{_quote_id(app_id)}/tasks")["tasks"]
        return tasks

    def queue(self) -> JSON:
        result: JSON = self._json("GET", "/v2/queue")
        return result

    def events(
        self, *, event_types: tuple[str, ...] = (), idle_timeout: float | None = 60.0
    ) -> Generator[Event, None, None]:
        """Follow ``/v2/events`` (server-sent events) until the stream closes.

        ``idle_timeout`` bounds the wait for the next bytes; Marathon sends no keep-alive
        comments by default, so callers that must notice a dead stream set it and reconnect
        (the stream then ends with :class:`MarathonUnavailable`). ``close()`` on the returned
        generator closes the connection.
        """
        params = [("event_type", t) for t in event_types]
        response = self._send(
            "GET",
            "/v2/events",
            params=params,
            stream=True,
            timeout=(self._settings.timeout, idle_timeout),
            accept="text/event-stream",
        )
        try:
            for sent in sseclient.SSEClient(_chunks(response)).events():
                yield _event(sent)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            raise MarathonUnavailable(f"event stream broke: {_describe(e)}") from e
        except UnicodeDecodeError as e:
            raise MarathonError("event stream: an event is not UTF-8") from e
        finally:
            response.close()

    def close(self) -> None:
        self._session.close()


def _headers(*, body: bool, accept: str | None) -> dict[str, str] | None:
    headers = {}
    if body:
        headers["Content-Type"] = "application/json"
    if accept:
        headers["Accept"] = accept
    return headers or None


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The bytes of a streamed answer, each piece as soon as it arrived.

    ``iter_content`` would wait for a full chunk on an answer that is not chunked, holding a
    small event back until the idle timeout; ``read1`` returns whatever has arrived.
    """
    while True:
        chunk = response.raw.read1(65536, decode_content=True)
        if not chunk:
            return
        yield chunk


def _event(sent: sseclient.Event) -> Event:
    try:
        payload = json.loads(sent.data)
    except ValueError as e:
        raise MarathonError(f"event stream: an event's data is not JSON: {e}") from e
    # sseclient names an event without an ``event:`` line "message", as browsers do; Marathon
    # always sends one, and its JSON carries the type too.
    event_type = sent.event if sent.event != "message" else payload.get("eventType", "")
    return Event(event_type=event_type, data=payload)


def _never_sent(error: requests.RequestException) -> bool:
    """True when the request cannot have reached Marathon (safe to send it elsewhere)."""
    if isinstance(error, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _describe(error: BaseException) -> str:
    """The innermost reason (refused, timed out, certificate not trusted...), without URLs.

    requests wraps urllib3's ``MaxRetryError`` whose ``reason`` is what went wrong; its own
    text names the host and path only, never the credentials (those travel in headers).
    """
    reason: BaseException = error
    for _ in range(5):
        inner = reason.args[0] if reason.args else None
        if isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
            reason = inner.reason
        elif isinstance(reason, urllib3.exceptions.MaxRetryError) and reason.reason is not None:
            reason = reason.reason
        elif isinstance(inner, BaseException):
            reason = inner
        else:
            break
    text = str(reason).split("(Caused by", 1)[0].strip()
    return text or type(reason).__name__


_MAX_ERROR_BYTES = 1 << 20
"""Of an error answer: its message and details (a 409's deployments) fit well within."""


def _error_for(response: requests.Response) -> MarathonError:
    try:
        body = answers.json_of(response.iter_content(answers.CHUNK), max_bytes=_MAX_ERROR_BYTES,
                               declared=response.headers.get("Content-Length"))
    except (answers.Unreadable, requests.RequestException):
        body = {}
    return error_for(response.status_code, response.reason, body)
