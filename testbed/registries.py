"""A real, throwaway image registry for the registry tests: Debian's ``docker-registry`` (the
Distribution registry) on a free port, storage in a temporary folder, and images pushed to it
through its HTTP API (a config blob, a layer blob and a minimal OCI manifest per tag: no
Docker daemon needed).

Three variants: anonymous, htpasswd basic auth, and bearer tokens from a small token server
started here (RS256 JWTs whose signing certificate is the registry's root bundle).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from reconciler.shell.ports import free_port
from testbed.processes import stop_process, wait_for_http

USER, PASSWORD = "release-manager", "s3cret-registry-pw"
SERVICE, ISSUER = "test-registry", "test-token-issuer"


class RegistryMissing(RuntimeError):
    pass


@dataclass
class Registry:
    url: str
    port: int
    auth: str | None
    tokens: TokenIssuer | None = None

    def _push_headers(self, repository: str) -> dict[str, str]:
        if self.auth == "htpasswd":
            pair = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        if self.auth == "token":
            assert self.tokens is not None
            token = self.tokens.mint(USER, repository, actions=["pull", "push"])
            return {"Authorization": f"Bearer {token}"}
        return {}

    def push(self, repository: str, tag: str) -> str:
        """Push a tiny image as ``repository:tag``; returns its manifest digest."""
        headers = self._push_headers(repository)
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Labels": {"tag": tag}},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = f"layer of {repository}:{tag}".encode()
        config_digest = self._blob(repository, config, headers=headers)
        layer_digest = self._blob(repository, layer, headers=headers)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": len(layer)}],
        }).encode()
        response = requests.put(
            f"{self.url}/v2/{repository}/manifests/{tag}", data=manifest, timeout=10,
            headers={**headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        response.raise_for_status()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        assert response.headers["Docker-Content-Digest"] == digest
        return digest

    def _blob(self, repository: str, data: bytes, *, headers: dict[str, str]) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = requests.post(f"{self.url}/v2/{repository}/blobs/uploads/", headers=headers,
                              timeout=10)
        start.raise_for_status()
        location = requests.compat.urljoin(self.url, start.headers["Location"])
        joiner = "&" if "?" in location else "?"
        done = requests.put(f"{location}{joiner}digest={digest}", data=data, timeout=10,
                            headers={**headers, "Content-Type": "application/octet-stream"})
        done.raise_for_status()
        return digest


class TokenIssuer:
    """A token server (``GET /token?service=&scope=`` with basic auth) signing RS256 JWTs."""

    def __init__(self, folder: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = folder / "token-root.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.requests = 0
        self._server: http.server.ThreadingHTTPServer | None = None

    def mint(self, subject: str, repository: str, *, actions: list[str]) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
                  "access": [{"type": "repository", "name": repository, "actions": actions}]}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"

    def start(self) -> None:
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                query = dict(p.split("=", 1) for p in self.path.split("?", 1)[-1].split("&"))
                scope = requests.utils.unquote(query.get("scope", ""))
                repository = scope.split(":")[1] if scope.count(":") == 2 else ""
                body = json.dumps({"token": issuer.mint(USER, repository,
                                                        actions=["pull"])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _binary() -> str:
    found = shutil.which("docker-registry")
    if found is None:
        raise RegistryMissing("docker-registry is not installed: run "
                              "scripts/install-test-deps.sh as root (Debian package "
                              "docker-registry)")
    return found


@contextlib.contextmanager
def running_registry(*, auth: str | None = None) -> Iterator[Registry]:
    """A registry on a free port: ``auth`` is None, ``"htpasswd"`` or ``"token"``."""
    binary = _binary()
    folder = Path(tempfile.mkdtemp(prefix="reconciler-registry-"))
    tokens: TokenIssuer | None = None
    process = None
    try:
        port = free_port()
        config: dict[str, Any] = {
            "version": 0.1, "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(folder / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
        }
        if auth == "htpasswd":
            hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
            (folder / "htpasswd").write_text(f"{USER}:{hashed}\n")
            config["auth"] = {"htpasswd": {"realm": "test", "path": str(folder / "htpasswd")}}
        elif auth == "token":
            tokens = TokenIssuer(folder)
            tokens.start()
            config["auth"] = {"token": {"realm": tokens.realm, "service": SERVICE,
                                        "issuer": ISSUER,
                                        "rootcertbundle": str(tokens.bundle)}}
        (folder / "config.yml").write_text(json.dumps(config))
        with open(folder / "registry.log", "wb") as log:
            process = subprocess.Popen([binary, "serve", str(folder / "config.yml")],
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/v2/", process=process)
        yield Registry(url=url, port=port, auth=auth, tokens=tokens)
    finally:
        if process is not None:
            stop_process(process)
        if tokens is not None:
            tokens.stop()
        shutil.rmtree(folder, ignore_errors=True)
