"""The commands that only read the records (releases, history, drift, status): a typo in
``--state-dir`` is said in one line with a non-zero exit, and nothing is created there; a
``--limit`` out of range is refused in one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.shell import records
from reconciler.shell.ports import free_port


def reconciler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [
    ["releases"], ["history"], ["drift"],
    # The store is opened before Marathon is asked: nothing listens on this port.
    ["status", "--marathon", f"http://127.0.0.1:{free_port()}"],
])
def test_a_state_dir_without_records_is_said_and_not_created(
        command: list[str], tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    result = reconciler(*command, "--state-dir", str(typo), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: no records at {typo} (no reconciler.db there: is the state directory "
        "right?)"], result.stderr
    assert not typo.exists(), "a read command created the state directory"


def test_an_existing_store_is_read_as_before(tmp_path: Path) -> None:
    records.open_store(tmp_path / "state").close()
    result = reconciler("releases", "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "no release recorded\n"), result.stderr


@pytest.mark.parametrize("command", ["releases", "history"])
def test_a_limit_beyond_the_bound_is_one_line_not_an_overflow(
        command: str, tmp_path: Path) -> None:
    records.open_store(tmp_path / "state").close()
    result = reconciler(command, "--state-dir", str(tmp_path / "state"),
                        "--limit", "99999999999999999999", cwd=tmp_path)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "99999999999999999999 is not in the range 1<=x<=1000000" in result.stderr
