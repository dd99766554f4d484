"""``reconciler validate``: the installed command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.core import repo


def run_validate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "validate", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=60, check=False)


def test_the_example_repo_is_valid_with_a_one_line_summary(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    result = run_validate(str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("valid: 7 apps, 1 images (lhcbdirac=lhcbdirac:v8r2p44)")


def test_json_and_yaml_say_valid_apps_and_images(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    as_json = json.loads(run_validate("--output", "json", str(root)).stdout)
    assert as_json["valid"] is True and len(as_json["apps"]) == 7
    assert as_json["images"] == ["lhcbdirac=lhcbdirac:v8r2p44"]
    assert yaml.safe_load(run_validate("--output", "yaml", str(root)).stdout) == as_json


def test_the_current_folder_is_the_default(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    result = run_validate(cwd=root)
    assert result.returncode == 0, result.stderr


def test_every_problem_is_printed_as_path_line_message(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    portal = root / "dirac-cert/web/portal.yaml"
    portal.write_text(portal.read_text().replace("mem: 512", "mem: [512"))  # YAML error
    catalog = root / "dirac-cert/datamanagement/filecatalog.yaml"
    catalog.write_text(catalog.read_text().replace("cpus: 0.25", "cpus: many"))  # schema
    fts = root / "dirac-cert/datamanagement/ftsmanager.yaml"
    fts.write_text(fts.read_text().replace("portIndex: 0", "portIndex: 4"))  # Marathon rule
    result = run_validate(str(root))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    cpus_line = catalog.read_text().splitlines().index("cpus: many") + 1
    port_line = fts.read_text().splitlines().index("    portIndex: 4") + 1
    assert lines[0].startswith(f"dirac-cert/datamanagement/filecatalog.yaml:{cpus_line}: ")
    assert lines[1].startswith(f"dirac-cert/datamanagement/ftsmanager.yaml:{port_line}: ")
    assert lines[2].startswith("dirac-cert/web/portal.yaml:")
    assert "invalid YAML" in lines[2]
    assert "3 problems" in result.stderr


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    result = run_validate(str(tmp_path / "missing"))
    assert result.returncode == 1
    assert "not a directory" in result.stderr
