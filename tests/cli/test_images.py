"""``reconciler images``: the installed command against a real registry, as text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.shell.ports import free_port
from testbed import registries
from tests.core import repo

pytestmark = pytest.mark.integration

IMAGES = """\
images:
  lhcbdirac:
    repository: lhcb/lhcbdirac
    tag: v8r2p44
    update: {{registry: "{url}", order: lhcbdirac}}
  nginx:
    repository: nginx
    tag: "1.25"
"""


@pytest.fixture(scope="module")
def server() -> Iterator[registries.Registry]:
    with registries.running_registry(auth="htpasswd") as running:
        for tag in ("v8r2p44", "v8r2p45", "v8r2p46", "v8r3-pre1", "latest"):
            running.push("lhcb/lhcbdirac", tag)
        yield running


def folder(tmp_path: Path, url: str) -> Path:
    root = repo.copy_example(tmp_path / "repo")
    (root / "images.yaml").write_text(IMAGES.format(url=url))
    return root


def auth_file(tmp_path: Path, port: int, password: str = registries.PASSWORD) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {f"127.0.0.1:{port}": {
        "username": registries.USER, "password": password}}}))
    return path


def run_images(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "images", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_text_names_the_newest_tag_and_why_others_were_skipped(
        server: registries.Registry, tmp_path: Path) -> None:
    result = run_images("--auth-file", str(auth_file(tmp_path, server.port)),
                        str(folder(tmp_path, server.url)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"lhcbdirac: v8r2p44 -> v8r2p46 available ({server.url} lhcb/lhcbdirac)",
        "  skipped latest: not a vXrYpZ version",
        "  skipped v8r3-pre1: pre-release (prereleases: false)",
        "  skipped v8r2p45: older than v8r2p46",
        "  skipped v8r2p44: the current tag; v8r2p46 is newer",
        "nginx: 1.25 (no update policy: moved by hand)"]


def test_json(server: registries.Registry, tmp_path: Path) -> None:
    result = run_images("--output", "json", "--auth-file",
                        str(auth_file(tmp_path, server.port)),
                        str(folder(tmp_path, server.url)))
    assert result.returncode == 0, result.stderr
    lhcbdirac, nginx = json.loads(result.stdout)
    assert (lhcbdirac["current"], lhcbdirac["newest"], lhcbdirac["update"]) == (
        "v8r2p44", "v8r2p46", "v8r2p46")
    assert {"tag": "v8r3-pre1", "skip": "pre-release",
            "reason": "pre-release (prereleases: false)"} in lhcbdirac["skipped"]
    assert nginx == {"image": "nginx", "current": "1.25", "policy": None}


def test_refused_or_unreachable_registries_are_errors_with_a_reason(
        server: registries.Registry, tmp_path: Path) -> None:
    refused = run_images("--auth-file", str(auth_file(tmp_path, server.port, "wrong-pw")),
                         str(folder(tmp_path, server.url)))
    assert refused.returncode == 1
    assert "error: " in refused.stdout and "access refused (401)" in refused.stdout
    assert "wrong-pw" not in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    down = run_images("--timeout", "2", str(folder(tmp_path / "down",
                                                   f"http://127.0.0.1:{free_port()}")))
    assert down.returncode == 1
    assert "unreachable" in down.stdout and "Traceback" not in down.stderr


def test_a_pattern_that_backtracks_forever_is_an_error_not_a_hang(
        server: registries.Registry, tmp_path: Path) -> None:
    # The reviewer's images.yaml: nested quantifiers and a tag that almost matches them
    # (with Python's re, `reconciler images` never ended). (a|aa)+ backtracks in any engine.
    for tag in ("v8r2p44", "a" * 60):  # a repository of its own: the others' tags stay
        server.push("lhcb/hostile", tag)
    root = folder(tmp_path, server.url)
    text = (root / "images.yaml").read_text()
    (root / "images.yaml").write_text(text.replace("repository: lhcb/lhcbdirac", (
        "repository: lhcb/hostile")).replace(
        "order: lhcbdirac}", "order: regex, pattern: '(a|aa)+b|v8r2p\\d+'}"))
    result = run_images("--auth-file", str(auth_file(tmp_path, server.port)), str(root))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "lhcbdirac: v8r2p44, registry" in result.stdout, result.stdout
    assert "took too long" in result.stdout and "Traceback" not in result.stderr
