"""Helpers for sync tests on the real dev cluster: config folders, CLI runs, live samples."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from testbed.apps import fast_app  # noqa: F401 - the tests' app, from the one copy
from testbed.apps import live_apps as apps

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_repo(root: Path, apps: list[dict[str, Any]], *, tag: str,
               settings: Mapping[str, Any] | None = None) -> Path:
    """A config repo folder: one YAML file per app (path = group), ``images.yaml`` with ``tag``."""
    root.mkdir(parents=True, exist_ok=True)
    set_tag(root, tag)
    for app in apps:
        relative = app["id"].strip("/") + ".yaml"
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(app, sort_keys=False))
    if settings is not None:
        (root / "reconciler.yaml").write_text(yaml.safe_dump(dict(settings)))
    return root


def set_tag(root: Path, tag: str) -> None:
    images = {"images": {"dirac": {"repository": "lhcbdirac", "tag": tag}}}
    (root / "images.yaml").write_text(yaml.safe_dump(images))


def sync(marathon: str, path: Path, state_dir: Path, *args: str,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return reconciler("sync", "--marathon", marathon, str(path), "--state-dir", str(state_dir),
                      *args, timeout=timeout)


def reconciler(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO_ROOT)


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def deployments(marathon: str) -> list[dict[str, Any]]:
    response = requests.get(f"{marathon}/v2/deployments", timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def versions(marathon: str, app_id: str) -> list[str]:
    response = requests.get(f"{marathon}/v2/apps{app_id}/versions", timeout=10)
    response.raise_for_status()
    result: list[str] = response.json()["versions"]
    return result


def image_of(app: Mapping[str, Any]) -> str:
    return str(app["container"]["docker"]["image"])


def healthy_tasks(app: Mapping[str, Any]) -> int:
    return sum(1 for t in app.get("tasks") or ()
               if t.get("state") == "TASK_RUNNING" and t.get("healthCheckResults")
               and all(r.get("alive") for r in t["healthCheckResults"]))


def history(state_dir: Path, *args: str) -> list[dict[str, Any]]:
    result = reconciler("history", "--state-dir", str(state_dir), "--output", "json", *args)
    assert result.returncode == 0, explain(result)
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def minimum_capacity(instances: int, minimum: float) -> int:
    return math.ceil(instances * minimum)


@dataclass
class Sampler:
    """Samples healthy task counts per app from the dev cluster while a rollout runs."""

    marathon: str
    interval: float = 0.1
    samples: list[dict[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                live = apps(self.marathon)
            except requests.RequestException:
                continue
            self.samples.append({app_id: healthy_tasks(a) for app_id, a in live.items()})
            time.sleep(self.interval)
