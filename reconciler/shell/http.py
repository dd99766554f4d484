"""Plain HTTP for everything but Marathon's API: a notification posted to a chat webhook, and
the demo's probes of the servers it started.

``requests`` is the one HTTP client of the controller side; it is imported here and in
:mod:`reconciler.shell.marathon`, which needs its adapters for retries and failover. Errors
are wrapped and chained, and their messages never name the URL, whose path may hold a token
(a Mattermost or Slack webhook's does)::

    HttpError        base: no useful answer
    ├── Refused      the server answered with an HTTP error (``.status``)
    └── Unreachable  no answer: refused, timed out, TLS failed, broken
"""

from __future__ import annotations

import json
from typing import Any

import requests


class HttpError(Exception):
    """No useful answer from an HTTP server."""


class Refused(HttpError):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class Unreachable(HttpError):
    pass


def post_json(url: str, body: bytes, *, timeout: float) -> None:
    """POST ``body`` (JSON text) to ``url``; raises :class:`HttpError` unless it is taken."""
    _send("POST", url, timeout=timeout, data=body,
          headers={"Content-Type": "application/json"}).close()


def get_json(url: str, *, timeout: float, max_bytes: int | None = None) -> Any:
    """The JSON document at ``url``; with ``max_bytes``, a longer answer is refused unread
    (``timeout`` bounds each read, not the whole answer)."""
    response = _send("GET", url, timeout=timeout, stream=max_bytes is not None)
    try:
        if max_bytes is None:
            return response.json()
        body = bytearray()
        for chunk in response.iter_content(chunk_size=65536):
            body += chunk
            if len(body) > max_bytes:
                raise HttpError(f"the answer is larger than {max_bytes} bytes")
        return json.loads(bytes(body))
    except ValueError as e:  # first: requests' JSONDecodeError is a RequestException too
        raise HttpError("the answer is not JSON") from e
    except requests.RequestException as e:
        raise Unreachable(_reason(e)) from e
    finally:
        response.close()


def answers(url: str, *, timeout: float = 2.0) -> bool:
    """True when ``url`` answers a GET without an HTTP error (a readiness probe)."""
    try:
        _send("GET", url, timeout=timeout).close()
    except HttpError:
        return False
    return True


def _send(method: str, url: str, *, timeout: float, **kwargs: Any) -> requests.Response:
    try:
        response = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as e:
        raise Unreachable(_reason(e)) from e
    if response.status_code >= 400:
        response.close()
        raise Refused(response.status_code)
    return response


def _reason(error: requests.RequestException) -> str:
    """What went wrong (``Connection refused``, ``timed out``...), without the URL that
    requests and urllib3 write into their own messages."""
    if isinstance(error, requests.Timeout):
        return "timed out"
    cause: BaseException | None = error
    for _ in range(8):  # requests -> urllib3's MaxRetryError -> its reason -> the OS error
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
        cause = getattr(cause, "reason", None) or cause.__cause__ or cause.__context__
    return "TLS failed" if isinstance(error, requests.exceptions.SSLError) \
        else type(error).__name__
