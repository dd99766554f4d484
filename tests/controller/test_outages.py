"""``reconciler run`` through outages: Git down and back, Marathon down and back.

Real processes only: ``git daemon`` serving the bare repo (stopped and started again on its
port), the dev cluster (stopped and started again with its state dir and port), and the
controller as a subprocess that is never restarted.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.controller.stack import CATALOG, PORTAL, Controller, repo_files, running

pytestmark = pytest.mark.integration


def first_sync(controller: Controller) -> str:
    revision = controller.wait("the first revision to be synced",
                               lambda: controller.get("/api/v1/status")["revision"])
    controller.wait("both apps healthy", lambda: all(
        controller.settled(a) for a in (CATALOG, PORTAL)))
    controller.wait("the controller to be ready", lambda: readyz(controller) == 200)
    return str(revision)


def readyz(controller: Controller) -> int:
    try:
        with urllib.request.urlopen(f"{controller.url}/readyz", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def metric(controller: Controller, name: str) -> float:
    text = requests.get(f"{controller.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name} in:\n{text}")


def test_git_down_keeps_the_last_revision_and_a_commit_is_applied_once_it_is_back(
        tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=1, serve_git=True) as controller:
        assert controller.git is not None
        first = first_sync(controller)
        assert len(first) == 40  # read over git://, a commit sha
        controller.git.stop()
        sha = controller.upstream.commit(repo_files(tag="v8r2p45"), message="Release v8r2p45")

        status = controller.wait("the controller to notice Git is down",
                                 lambda: (s := controller.get("/api/v1/status"))["gitError"]
                                 and s)
        assert "upstream.git" in status["gitError"] or "git" in status["gitError"]
        assert status["revision"] == first  # the last good revision stays in force
        assert readyz(controller) == 503
        assert metric(controller, "reconciler_git_errors_total") >= 1
        assert controller.image_of(CATALOG) == "lhcbdirac:v8r2p44"

        controller.git.start()
        controller.wait("the commit made while Git was down to reach Marathon",
                        lambda: controller.image_of(CATALOG) == "lhcbdirac:v8r2p45", timeout=90)
        controller.wait("the controller to report it",
                        lambda: controller.get("/api/v1/status")["revision"] == sha)
        controller.wait("the controller to be ready again", lambda: readyz(controller) == 200,
                        timeout=30)
        assert controller.process.poll() is None


def test_marathon_down_is_retried_and_a_commit_is_applied_once_it_is_back(
        tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=1) as controller:
        first = first_sync(controller)
        controller.dev.stop()
        sha = controller.upstream.commit(repo_files(tag="v8r2p45"), message="Release v8r2p45")

        status = controller.wait("the controller to notice Marathon is down",
                                 lambda: (s := controller.get("/api/v1/status"))[
                                     "marathonError"] and s)
        assert status["revision"] == first and status["seenRevision"] == sha
        assert readyz(controller) == 503
        assert metric(controller, "reconciler_marathon_errors_total") >= 1

        controller.restart_marathon()
        controller.wait("the commit made while Marathon was down to reach it",
                        lambda: controller.image_of(CATALOG) == "lhcbdirac:v8r2p45", timeout=90)
        controller.wait("the controller to report it",
                        lambda: controller.get("/api/v1/status")["revision"] == sha, timeout=30)
        controller.wait("the controller to be ready again", lambda: readyz(controller) == 200,
                        timeout=30)
        runs = controller.get("/api/v1/history")["history"]
        failed = [e for e in runs if e["kind"] == "run" and e["revision"] == sha
                  and e["outcome"] == "failed"]
        assert failed, "the attempts while Marathon was down are recorded as failed runs"
        assert controller.process.poll() is None
