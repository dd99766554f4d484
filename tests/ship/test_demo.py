"""``reconciler demo``: the whole story, unattended, with real child processes.

The demo starts its own dev cluster and controller; these tests run it as a user would
(`reconciler demo --non-interactive`, shortened timings) and check what it printed, what the
controller recorded, and that no child process outlives it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.shell import records

MISSING = [name for name in ("reconciler.shell.gitsource", "reconciler.cli.run")
           if importlib.util.find_spec(name) is None]
# The demo drives the controller (`reconciler run`) and the Git source; until both are in the
# tree the story cannot run, and these tests say so instead of failing on someone else's gap.
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"not in the tree yet: {MISSING}")

FAST = ("--poll-interval", "1", "--deadline", "8", "--step-timeout", "90")


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line, environment or working folder contains ``text``
    (the dev cluster's tasks run in sandboxes under the demo's folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            seen = ((entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
                    + os.readlink(entry / "cwd").encode())
        except OSError:
            continue
        if text.encode() in seen:
            found.append(int(entry.name))
    return found


def demo(workdir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "demo", "--workdir", str(workdir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True)


def logs(workdir: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}"
                     for p in sorted(workdir.glob("*.log")))


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_the_demo_releases_rolls_back_a_broken_release_and_corrects_drift(tmp_path: Path
                                                                          ) -> None:
    workdir = tmp_path / "demo"
    process = demo(workdir, "--non-interactive", *FAST)
    try:
        output, _ = process.communicate(timeout=280)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output + logs(workdir)

    headings = [line for line in output.splitlines() if line.startswith("== ")]
    assert [h.split(".")[0] for h in headings[:4]] == ["== 1", "== 2", "== 3", "== 4"]
    assert "every app live on lhcbdirac:v8r2p45" in output
    assert "lhcbdirac:v8r2p46-broken" in output      # the broken release reached Marathon
    assert "record    rollback of /dirac-cert/" in output
    assert "record    drift on /dirac-cert/datamanagement/filecatalog" in output
    assert "corrected, resolved" in output  # judged from the drift record, not live alone
    # Non-interactive: the servers stop with the demo, so no address of theirs is offered.
    assert "dashboard        http" not in output and "the servers stop with the demo" in output
    assert "demo finished: every step behaved." in output

    store = records.open_store(workdir / "state")
    try:
        assert store.rollbacks(), "the controller recorded no rollback"
        assert store.drifts(app_id="/dirac-cert/datamanagement/filecatalog")
    finally:
        store.close()
    assert processes_mentioning(str(workdir)) == []


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_interrupting_the_demo_stops_every_child_process(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    process = demo(workdir, "--non-interactive", *FAST)
    try:
        assert process.stdout is not None
        seen = []
        deadline = time.monotonic() + 90
        for line in process.stdout:
            seen.append(line)
            if line.strip().startswith("controller") or time.monotonic() > deadline:
                break
        assert any(line.strip().startswith("controller") for line in seen), "".join(seen)
        assert processes_mentioning(str(workdir)), "no child process was started"
        os.killpg(process.pid, signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, "".join(seen) + rest
    assert processes_mentioning(str(workdir)) == []


@pytest.mark.integration
def test_a_broken_example_stops_the_demo_with_the_reason(tmp_path: Path) -> None:
    example = tmp_path / "example"
    (example / "dirac-cert").mkdir(parents=True)
    (example / "dirac-cert" / "portal.yaml").write_text("instances: -1\ncmd: run\n")
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "demo", "--non-interactive", "--example",
         str(example), "--workdir", str(tmp_path / "demo"), *FAST],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 1
    assert "dirac-cert/portal.yaml" in result.stderr
    assert processes_mentioning(str(tmp_path / "demo")) == []
