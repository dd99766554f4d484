"""Start real child processes on free ports and always clean them up."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(
    url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until ``url`` answers any HTTP status below 500."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
            last_error = e
        except OSError as e:
            last_error = e
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last_error}")


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class DevCluster:
    """A running ``reconciler devcluster`` subprocess."""

    url: str
    port: int
    state_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls, *, state_dir: Path, images: Path | None = None, port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> DevCluster:
        port = port or free_port()
        state_dir.mkdir(parents=True, exist_ok=True)
        log_path = state_dir / "devcluster.log"
        args = [sys.executable, "-m", "reconciler", "devcluster", "--host", "127.0.0.1",
                "--port", str(port), "--state-dir", str(state_dir), *extra_args]
        if images is not None:
            args += ["--images", str(images)]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/ping", process=process)
        except Exception:  # noqa: BLE001 - whatever stopped it, stop it and show the log
            stop_process(process)
            raise RuntimeError(f"dev cluster did not start:\n{log_path.read_text()}") from None
        return cls(url=url, port=port, state_dir=state_dir, log_path=log_path, process=process)

    def stop(self) -> None:
        stop_process(self.process)
