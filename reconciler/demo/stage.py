"""The demo's stage: its options and timings, the child processes it starts, where its files go.

Child processes run in their own process groups and are all stopped by
:meth:`Children.stop_all`, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.shell import config


class StepFailed(Exception):
    """A step of the story did not behave: the demo stops, says why, and exits 1."""


def gitsource() -> Any:
    """The Git source module (the only one that imports ``git``), loaded when the demo runs.

    Imported late so that ``reconciler --help`` and the other commands never depend on it.
    """
    try:
        return importlib.import_module("reconciler.shell.gitsource")
    except ImportError as e:
        raise StepFailed(f"the Git source module is missing: {e}") from e


@dataclass(frozen=True)
class Timings:
    """How fast the story runs; tests shorten it, people keep the defaults."""

    poll_interval: float = 2.0
    """RECONCILER_POLL_INTERVAL of the controller: how soon a commit or a drift is seen."""
    deadline: float = 20.0
    """Seconds a rollout may take before it is rolled back (written into reconciler.yaml)."""
    step_timeout: float = 180.0
    """How long one step may take before the demo gives up on it."""
    tick: float = 0.5


@dataclass(frozen=True)
class Options:
    example: Path
    """The config repo folder to start from (``desired-state/``)."""
    workdir: Path
    """Where the repo, the state and the logs go."""
    interactive: bool
    timings: Timings = field(default_factory=Timings)
    release_tag: str = "v8r2p45"
    broken_tag: str = "v8r2p46-broken"


def default_example() -> Path:
    """The example config repo shipped with the package (``desired-state/``)."""
    return config.BUNDLED_DESIRED_STATE


class Children:
    """Child processes in their own process groups, all stopped by :meth:`stop_all`."""

    def __init__(self) -> None:
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], *, log: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(log, "ab") as handle:
            process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env,
                                       start_new_session=True)
        self._running.append((name, process))
        return process

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Stop and watch ``process`` (started elsewhere, in its own process group) too."""
        self._running.append((name, process))

    def alive(self, name: str) -> bool:
        """True while the child called ``name`` runs."""
        return any(n == name and process.poll() is None for n, process in self._running)

    def check_alive(self) -> None:
        for name, process in self._running:
            if process.poll() is not None:
                raise StepFailed(f"the {name} exited with status {process.returncode}")

    def stop_all(self) -> None:
        for _, process in reversed(self._running):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for _, process in reversed(self._running):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._running.clear()
