"""Fixtures shared by every test folder: real processes, temporary directories."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.devcluster import launch
from tests.reliability import tally
from tests.support import crashes, webhooks

REPO_ROOT = Path(__file__).resolve().parent.parent
MARATHON_REFERENCE = REPO_ROOT.parent / "shared" / "marathon-reference"


@pytest.fixture
def devcluster(tmp_path: Path) -> Iterator[launch.RunningCluster]:
    """A fresh dev cluster subprocess on a free port, with the shipped image catalog."""
    cluster = launch.launch(state_dir=tmp_path / "devcluster")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def receiver() -> Iterator[webhooks.Receiver]:
    """A chat webhook endpoint that keeps what it is sent."""
    r = webhooks.Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="session")
def marathon_reference() -> Path:
    """Marathon's own API examples and RAML schemas (see its README)."""
    if not MARATHON_REFERENCE.is_dir():
        pytest.fail(f"{MARATHON_REFERENCE} is missing: CI clones main with shared/ beside it")
    return MARATHON_REFERENCE


def pytest_configure(config: pytest.Config) -> None:
    """The reliability table's folder, made once by the main process (workers inherit it)."""
    if not hasattr(config, "workerinput") and not os.environ.get(tally.ENV):
        os.environ[tally.ENV] = tempfile.mkdtemp(prefix="reliability-")
    if not hasattr(config, "workerinput"):
        crashes.prepare()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """After pytest's own faulthandler set up: a dead worker's stacks go to its crash file."""
    worker = getattr(session.config, "workerinput", {}).get("workerid")
    if worker:
        crashes.watch(worker)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the reliability table when reliability cases (or the fuzz tests) ran."""
    if hasattr(config, "workerinput"):
        return
    crashes.report(terminalreporter)
    if not os.environ.get(tally.ENV):
        return
    folder = Path(os.environ[tally.ENV])
    found = tally.rows(folder) if folder.is_dir() else []
    fuzz = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])
            if getattr(r, "when", "") == "call" and "test_fuzz_load.py" in r.nodeid]
    if fuzz:
        examples = int(os.environ.get("FUZZ_EXAMPLES", "200"))
        passed = sum(1 for r in fuzz if r.passed)
        found.append(tally.Row(case=f"fuzz: hostile config files ({len(fuzz)} properties)",
                               tried=len(fuzz) * examples, survived=passed * examples))
    if found:
        terminalreporter.write_sep("=", "reliability" + (" (long form)" if tally.LONG else ""))
        terminalreporter.write_line(tally.table(found))
    shutil.rmtree(folder, ignore_errors=True)
