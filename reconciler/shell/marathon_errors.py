"""What Marathon's answers mean: its errors by HTTP status, the shapes its answers must have,
and the deployment a write started. The client (:mod:`reconciler.shell.marathon`) reads the
answers (bounded, :mod:`reconciler.shell.answers`) and raises these; callers catch them as
``marathon.MarathonError`` and so on (the client module names them too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.shell import answers

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


class Fenced(Exception):
    """This process may not write to Marathon now (another replica leads, or leadership is in
    doubt); nothing was sent. Stop the run and leave its records for the leader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DeploymentRef:
    """What Marathon answers to a change: the deployment it started and the new version."""

    deployment_id: str
    version: str


def field_of(body: Any, key: str, *, what: str) -> Any:
    """``body[key]`` from an answer that must be an object holding ``key``."""
    if not isinstance(body, dict) or key not in body:
        raise MarathonError(f"{what}: Marathon answered nonsense: expected an object with "
                            f"{key!r}, got {answers.shape(body)}")
    return body[key]


def object_of(body: Any, *, what: str) -> JSON:
    if not isinstance(body, dict):
        raise MarathonError(f"{what}: Marathon answered nonsense: expected an object, got "
                            f"{answers.shape(body)}")
    return body


def objects_of(body: Any, *, what: str) -> list[JSON]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise MarathonError(f"{what}: Marathon answered nonsense: expected a list of objects, "
                            f"got {answers.shape(body)}")
    return body


def unreadable(method: str, path: str, error: answers.Unreadable, *, status: int
                ) -> MarathonError:
    """Nonsense is Marathon's error (permanent until it answers sense); an answer too large
    or too slow to read is an outage (retried with backoff)."""
    text = str(error)
    if isinstance(error, answers.Nonsense):
        said = "non-JSON" if text.startswith("not JSON") else f"nonsense: {text}"
        return MarathonError(f"{method} {path}: Marathon answered {said}", status=status)
    return MarathonUnavailable(f"{method} {path}: {text}")


def deployment_ref(answer: Any) -> DeploymentRef:
    """PUT/DELETE answer ``{deploymentId, version}``; POST answers the app with ``deployments``."""
    body = object_of(answer, what="a write's answer")
    if "deploymentId" in body:
        return DeploymentRef(deployment_id=body["deploymentId"], version=body.get("version", ""))
    deployments = body.get("deployments") or []
    if deployments:
        return DeploymentRef(deployment_id=deployments[0]["id"], version=body.get("version", ""))
    raise MarathonError(f"Marathon's answer names no deployment: {sorted(body)}")


def error_for(status: int, reason: str | None, body: Any) -> MarathonError:
    """The error an answer with HTTP ``status`` (and its JSON ``body``, if any) means."""
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or reason or f"HTTP {status}")
    raw_details = body.get("details")
    if isinstance(raw_details, str):  # Jackson's parse error: details is the parser's text
        message, raw_details = f"{message}: {raw_details}", None
    details: list[JSON] = list(raw_details or [])
    if status == 409:
        details = list(body.get("deployments") or details)
        return Conflict(message, status=status, details=details)
    if status in (401, 403):
        return Unauthorized(message, status=status)
    if status == 404:
        return NotFound(message, status=status)
    if status in (400, 422):
        return Unprocessable(message, status=status, details=details)
    if status >= 500:
        return MarathonUnavailable(f"HTTP {status}: {message}", status=status)
    return MarathonError(message, status=status, details=details)
