"""Start real child processes on free ports and always clean them up (the dev cluster is
started by the package's own launcher, ``reconciler.devcluster.launch``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


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


def run_env(*, marathon_url: str, repo_url: str, state_dir: Path, port: int,
            **settings: str) -> dict[str, str]:
    """The environment of a ``reconciler run`` child on ``port``: this process's, plus one
    Marathon, the config repo's ``main`` and a state folder; ``settings`` are further
    ``RECONCILER_*`` variables, named without the prefix (``POLL_INTERVAL="1"``)."""
    return {**os.environ, "RECONCILER_MARATHON_URL": marathon_url,
            "RECONCILER_REPO_URL": repo_url, "RECONCILER_REPO_REF": "main",
            "RECONCILER_STATE_DIR": str(state_dir), "RECONCILER_LISTEN": f"127.0.0.1:{port}",
            **{f"RECONCILER_{name}": value for name, value in settings.items()}}
