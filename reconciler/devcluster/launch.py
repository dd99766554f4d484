"""Start a dev cluster as a child process and stop it: the one launcher everything uses.

The controller's embedded mode, ``reconciler demo``, the tests and the benchmarks all start
``python -m reconciler devcluster`` through :func:`launch`. The child listens on the port asked
for (``0``: any free port, chosen by the kernel, so there is no race for a port picked in
advance) and, once it listens, writes its real URL to ``--url-file``; the launcher waits for
that file or for the child's exit, so it never probes HTTP. The URL file stays while the dev
cluster runs (``reconciler status`` finds an embedded cluster through it) and is removed when
it stops.

This module imports nothing else from ``reconciler``: the controller may use it and still share
no code with the dev cluster, which must never hide a controller bug by agreeing with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

URL_FILE = "url"
"""In the dev cluster's state folder: its URL while it runs."""
LOG_FILE = "devcluster.log"
"""In the dev cluster's state folder unless told otherwise: its stdout and stderr."""


class DidNotStart(RuntimeError):
    """The dev cluster exited or stayed silent before it listened; its log says why."""

    def __init__(self, message: str, *, log_path: Path) -> None:
        super().__init__(message)
        self.log_path = log_path


@dataclasses.dataclass
class RunningCluster:
    """A dev cluster child process that listens on :attr:`url`."""

    url: str
    port: int
    state_dir: Path
    log_path: Path
    url_file: Path
    process: subprocess.Popen[bytes]
    own_session: bool = True
    """Started in its own session (and process group), signalled as a group."""

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM (the dev cluster then stops its tasks), SIGKILL after ``timeout``."""
        _terminate(self.process, group=self.own_session, timeout=timeout)
        # A clean exit removes it already; a killed dev cluster could not.
        with contextlib.suppress(FileNotFoundError):
            self.url_file.unlink()


def launch(
    *,
    state_dir: Path,
    port: int = 0,
    host: str = "127.0.0.1",
    images: Path | None = None,
    log_path: Path | None = None,
    extra_args: Sequence[str] = (),
    own_session: bool = True,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> RunningCluster:
    """Start ``reconciler devcluster`` with its state in ``state_dir`` and wait until it listens.

    ``port`` 0 picks a free port. Output goes to ``log_path`` (default
    ``state_dir/devcluster.log``, appended). ``own_session``: the child does not get the
    signals of the caller's terminal (Ctrl-C, hangup); without it, it does, as a foreground
    child would, so a closed terminal takes it down with its caller. Raises
    :class:`DidNotStart` with the log's path when the child exits or does not listen within
    ``timeout`` seconds. ``env``: variables added to the child's environment (the tests' fault
    knobs, e.g. ``DEVCLUSTER_ANSWER_DELAY_PUT``).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or state_dir / LOG_FILE
    url_file = state_dir / URL_FILE
    # A URL left by a dev cluster that was killed must not be taken for the new one's.
    with contextlib.suppress(FileNotFoundError):
        url_file.unlink()
    args = [sys.executable, "-m", "reconciler", "devcluster", "--host", host,
            "--port", str(port), "--state-dir", str(state_dir), "--url-file", str(url_file),
            *extra_args]
    if images is not None:
        args += ["--images", str(images)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=own_session,
                                   env=None if env is None else {**os.environ, **env})
    try:
        url = _wait_for_url(url_file, process=process, log_path=log_path, timeout=timeout)
    except DidNotStart:
        _terminate(process, group=own_session, timeout=5.0)
        raise
    return RunningCluster(url=url, port=int(url.rsplit(":", 1)[1]), state_dir=state_dir,
                          log_path=log_path, url_file=url_file, process=process,
                          own_session=own_session)


def read_url(state_dir: Path) -> str | None:
    """The URL of the dev cluster running with ``state_dir``, if one runs."""
    path = state_dir / URL_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip() or None
    return None


def _wait_for_url(
    url_file: Path, *, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            # Written by rename, so it is never seen half written.
            return url_file.read_text().strip()
        if process.poll() is not None:
            raise DidNotStart(f"the dev cluster exited with status {process.returncode} before "
                              f"it listened; see {log_path}", log_path=log_path)
        time.sleep(0.02)
    raise DidNotStart(f"the dev cluster did not listen within {timeout:.0f}s; see {log_path}",
                      log_path=log_path)


def _terminate(process: subprocess.Popen[bytes], *, group: bool, timeout: float) -> None:
    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)

    if process.poll() is None:
        send(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    if process.poll() is None:
        send(signal.SIGKILL)
    process.wait()
