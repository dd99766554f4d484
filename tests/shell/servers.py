"""Real HTTP(S) servers for the Marathon client tests: scripted answers, recorded requests.

A ``ScriptedMarathon`` is a real ``http.server`` in a thread on a free port. Each route
(method, path) holds a list of replies: every request takes the next one, the last one
repeats. Requests are recorded as they arrived (method, path, query, headers, body), so
tests check what went over the wire rather than what the client meant to send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import ipaddress
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reconciler.shell import ports


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    """JSON-able value, or bytes sent as they are."""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    """Seconds to wait before answering (to provoke read timeouts)."""


@dataclass(frozen=True)
class Stream:
    """A server-sent event stream: ``parts`` written one by one, then held open or closed."""

    parts: tuple[bytes, ...]
    chunked: bool = True
    hold_open: float = 0.0
    """Seconds to keep the connection open (idle) after the last part."""
    keepalive: float | None = None
    """When set, write a ``:`` comment this often while held open (to notice a close)."""


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class ScriptedMarathon:
    server: http.server.ThreadingHTTPServer
    scheme: str = "http"
    routes: dict[tuple[str, str], list[Reply | Stream]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def on(self, method: str, path: str, *replies: Reply | Stream) -> None:
        with self.lock:
            self.routes[(method, path)] = list(replies)

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if (method is None or s.method == method)
                    and (path is None or s.path == path)]

    def next_reply(self, method: str, path: str) -> Reply | Stream:
        with self.lock:
            replies = self.routes.get((method, path))
            if not replies:
                return Reply(404, {"message": f"App '{path}' does not exist"})
            return replies.pop(0) if len(replies) > 1 else replies[0]


def _handler(marathon: ScriptedMarathon) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _serve(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with marathon.lock:
                marathon.seen.append(Seen(
                    method=self.command, path=parsed.path,
                    query=urllib.parse.parse_qs(parsed.query),
                    headers={k.lower(): v for k, v in self.headers.items()}, body=body))
            reply = marathon.next_reply(self.command, parsed.path)
            if isinstance(reply, Stream):
                self._stream(reply)
                return
            if reply.delay:
                marathon.closing.wait(reply.delay)
            payload = reply.body if isinstance(reply.body, bytes) else (
                b"" if reply.body is None else json.dumps(reply.body).encode())
            self.send_response(reply.status)
            if not isinstance(reply.body, bytes):
                self.send_header("Content-Type", "application/json")
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up waiting (a read timeout)
                self.wfile.write(payload)

        def _stream(self, stream: Stream) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            if stream.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            try:
                for part in stream.parts:
                    self._write(part, chunked=stream.chunked)
                deadline = time.monotonic() + stream.hold_open
                while time.monotonic() < deadline and not marathon.closing.is_set():
                    if stream.keepalive is None:
                        marathon.closing.wait(deadline - time.monotonic())
                        continue
                    marathon.closing.wait(stream.keepalive)
                    self._write(b":\n", chunked=stream.chunked)
                if stream.chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:
                with marathon.lock:
                    marathon.disconnects.append(self.path)
            self.close_connection = True

        def _write(self, data: bytes, *, chunked: bool) -> None:
            if chunked:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(data)
            self.wfile.flush()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815 - http.server names

    return Handler


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (PEM)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    """A CA that signed nothing here: verifying against it must fail."""


def make_tls_files(folder: Path) -> TlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _certificate("reconciler test CA", issuer=None, ca=True)
    other_key, other_cert = _certificate("some other CA", issuer=None, ca=True)
    server_key, server_cert = _certificate("127.0.0.1", issuer=(ca_key, ca_cert), server=True)
    client_key, client_cert = _certificate("reconciler", issuer=(ca_key, ca_cert))
    files = TlsFiles(ca=folder / "ca.pem", server_cert=folder / "server.pem",
                     server_key=folder / "server.key", client_cert=folder / "client.pem",
                     client_key=folder / "client.key", other_ca=folder / "other-ca.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.other_ca.write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.client_cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    for path, key in ((files.server_key, server_key), (files.client_key, client_key)):
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return files


def _certificate(
    name: str, *, issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None,
    ca: bool = False, server: bool = False,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key, issuer_name = (key, subject) if issuer is None else (issuer[0], issuer[1].subject)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
        assert issuer is not None
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[0].public_key()),
            critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]),
            critical=False)
    return key, builder.sign(signer_key, hashes.SHA256())


@contextlib.contextmanager
def serve(*, tls: TlsFiles | None = None, require_client_cert: bool = True,
          ) -> Iterator[ScriptedMarathon]:
    """A scripted Marathon on 127.0.0.1 and a free port, HTTPS when ``tls`` is given."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.daemon_threads = True
    marathon = ScriptedMarathon(server=server, scheme="https" if tls else "http")
    server.RequestHandlerClass = _handler(marathon)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls.server_cert), str(tls.server_key))
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(str(tls.ca))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield marathon
    finally:
        marathon.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """An http URL on which nothing listens (connection refused)."""
    return f"http://127.0.0.1:{ports.free_port()}"
