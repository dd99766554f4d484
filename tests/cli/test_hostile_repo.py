"""``reconciler validate`` on a hostile repo: exit 1 with ``path: message``, no traceback, and
a bounded resident memory, measured on the real command in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.core import repo
from tests.core.test_hostile_files import ALIAS_BOMB

MAX_RSS_MB = 300

# A fresh interpreter runs the command and reports its child's peak RSS: RUSAGE_CHILDREN of
# the test process would count every child it ever had. The address-space limit keeps a
# regression from eating the machine's memory: it then fails (MemoryError) instead.
_MEASURE = """
import json, resource, subprocess, sys
limit = 2 * 1024 ** 3
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
result = subprocess.run([sys.executable, "-m", "reconciler", "validate", sys.argv[1]],
                        capture_output=True, text=True, timeout=60, preexec_fn=cap)
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": result.returncode, "out": result.stdout, "err": result.stderr,
                  "peak_mb": peak_kib / 1024}))
"""


def validate_measured(root: Path) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-c", _MEASURE, str(root)], capture_output=True,
                         text=True, timeout=120, check=True)
    measured: dict[str, object] = json.loads(run.stdout)
    return measured


def test_an_alias_bomb_exits_1_at_once_in_little_memory(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    (root / "dirac-cert/web/portal.yaml").write_text(ALIAS_BOMB)
    result = validate_measured(root)
    assert result["code"] == 1, result
    assert "dirac-cert/web/portal.yaml:1: YAML anchors and aliases" in str(result["out"])
    assert "Traceback" not in str(result["err"])
    assert float(str(result["peak_mb"])) < MAX_RSS_MB, result


def test_a_symlink_to_etc_shadow_exits_1_without_printing_it(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    (root / "dirac-cert/web/shadow.yaml").symlink_to("/etc/shadow")
    (root / "passwd.json").symlink_to("/etc/passwd")
    result = validate_measured(root)
    assert result["code"] == 1, result
    errors = str(result["err"]).splitlines()
    assert errors == ["error: dirac-cert/web/shadow.yaml: symbolic link not allowed: commit "
                      "the file itself",
                      "error: passwd.json: symbolic link not allowed: commit the file itself"]
    assert "root:" not in str(result["out"]) + str(result["err"])
    assert float(str(result["peak_mb"])) < MAX_RSS_MB, result
