"""The Marathon client: the only module that imports ``requests``.

CONTRACT STUB: signatures and docstrings here are the agreed interface; the bodies are
being implemented. Apps are plain JSON dicts, never model objects (no lossy round-trip).

Exception tree (what each one means for the caller)::

    MarathonError                 base; carries Marathon's ``message`` and ``details``
    ├── MarathonUnavailable       connection refused/timed out or 5xx on every URL: retry later
    ├── Unauthorized              401/403: stop and alert, credentials are wrong
    ├── NotFound                  404: the app/deployment does not exist
    ├── Conflict                  409: locked by deployments (``.deployment_ids``)
    └── Unprocessable             422 (or 400): Marathon rejected the definition (``.details``)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


class MarathonError(Exception):
    def __init__(
        self, message: str, *, status: int | None = None, details: list[JSON] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details or []


class MarathonUnavailable(MarathonError):
    """Temporary: no Marathon URL answered usefully. Retry with backoff."""


class Unauthorized(MarathonError):
    """Permanent until credentials change."""


class NotFound(MarathonError):
    pass


class Conflict(MarathonError):
    """The app is locked by running deployments."""

    @property
    def deployment_ids(self) -> list[str]:
        return [d["id"] for d in self.details if "id" in d]


class Unprocessable(MarathonError):
    """Marathon refused the definition; ``details`` holds ``[{"path", "errors"}]``."""


@dataclass(frozen=True)
class ClientSettings:
    urls: tuple[str, ...]
    """One or more Marathon base URLs; the client fails over in order."""
    username: str | None = None
    password: str | None = None
    token: str | None = None
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
class DeploymentRef:
    """What Marathon answers to a change: the deployment it started and the new version."""

    deployment_id: str
    version: str


@dataclass(frozen=True)
class Event:
    """One server-sent event from ``/v2/events``: its ``eventType`` and its JSON body."""

    event_type: str
    data: JSON


class MarathonClient:
    def __init__(self, settings: ClientSettings, *, session: Any | None = None) -> None:
        raise NotImplementedError

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (benchmarks and metrics read it)."""
        raise NotImplementedError

    def ping(self) -> None:
        raise NotImplementedError

    def info(self) -> JSON:
        raise NotImplementedError

    def list_apps(self, *, prefix: str | None = None, embed: tuple[str, ...] = ()) -> list[JSON]:
        """All apps in one request (``GET /v2/apps?id=prefix&embed=...``)."""
        raise NotImplementedError

    def get_app(self, app_id: str, *, embed: tuple[str, ...] = ()) -> JSON:
        raise NotImplementedError

    def create_app(self, definition: JSON) -> DeploymentRef:
        raise NotImplementedError

    def update_app(self, app_id: str, definition: JSON, *, force: bool = False) -> DeploymentRef:
        """Full replacement (``PUT /v2/apps/{id}?partialUpdate=false``): a rolling upgrade."""
        raise NotImplementedError

    def scale_app(self, app_id: str, instances: int, *, force: bool = False) -> DeploymentRef:
        raise NotImplementedError

    def delete_app(self, app_id: str, *, force: bool = False) -> DeploymentRef:
        raise NotImplementedError

    def restart_app(self, app_id: str, *, force: bool = False) -> DeploymentRef:
        raise NotImplementedError

    def list_versions(self, app_id: str) -> list[str]:
        raise NotImplementedError

    def get_app_version(self, app_id: str, version: str) -> JSON:
        raise NotImplementedError

    def list_deployments(self) -> list[JSON]:
        raise NotImplementedError

    def cancel_deployment(self, deployment_id: str, *, force: bool = False) -> DeploymentRef | None:
        """Without force Marathon starts a rollback deployment (returned); with force, None."""
        raise NotImplementedError

    def list_tasks(self, app_id: str) -> list[JSON]:
        raise NotImplementedError

    def queue(self) -> JSON:
        raise NotImplementedError

    def events(self, *, event_types: tuple[str, ...] = ()) -> Iterator[Event]:
        """Follow ``/v2/events`` (server-sent events) until the stream closes."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
