"""Send a large request body chunk by chunk on a raw socket, never holding it in memory, and
read the answer as soon as the server gives one (it may answer before the body is sent)."""

from __future__ import annotations

import contextlib
import select
import socket
import time
import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    head: str
    sent: int
    """Body bytes sent before the answer came (or all of them)."""


def stream_post(url: str, *, total: int, headers: dict[str, str] | None = None,
                chunk_size: int = 1024 * 1024, declare_length: bool = False,
                stop_after: int | None = None, timeout: float = 60) -> Answer:
    """POST ``total`` bytes to ``url``: chunked, or with a Content-Length when
    ``declare_length``. ``stop_after``: send that many bytes, then only wait for an answer."""
    parts = urllib.parse.urlsplit(url)
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}",
             "Content-Type: application/json"]
    lines.append(f"Content-Length: {total}" if declare_length else "Transfer-Encoding: chunked")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    chunk = b"x" * chunk_size  # the same bytes again and again: nothing accumulates here
    deadline = time.monotonic() + timeout
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent = 0
        limit = total if stop_after is None else min(total, stop_after)
        while sent < limit and not _readable(sock, 0):
            size = min(chunk_size, limit - sent)
            piece = chunk[:size]
            try:
                sock.sendall(piece if declare_length else b"%x\r\n%s\r\n" % (size, piece))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += size
        if sent >= total and not declare_length:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"0\r\n\r\n")
        if not _readable(sock, max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"no answer after sending {sent} bytes")
        head = _read_answer(sock, deadline)
    status = int(head.split(" ", 2)[1])
    return Answer(status=status, head=head, sent=sent)


def _read_answer(sock: socket.socket, deadline: float) -> str:
    """The status line, headers and body (by its Content-Length), as text."""
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        head, found, body = data.partition(b"\r\n\r\n")
        if found:
            length = [line.split(b":", 1)[1] for line in head.lower().split(b"\r\n")
                      if line.startswith(b"content-length:")]
            if length and len(body) >= int(length[0]):
                break
    return data.decode("latin-1")


def _readable(sock: socket.socket, wait: float) -> bool:
    readable, _, _ = select.select([sock], [], [], wait)
    return bool(readable)
