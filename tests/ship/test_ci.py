"""GitLab CI: this project's pipeline, and the template config repos include.

The template's job scripts run as GitLab would run them (bash, `set -eo pipefail`, the
documented variables set) in a real Git checkout of a config repo, against a dev cluster
subprocess; the merge request note goes to a local stand-in of GitLab's notes API.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from reconciler.devcluster import launch
from reconciler.shell.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_CI = REPO_ROOT / ".gitlab-ci.yml"
TEMPLATE = REPO_ROOT / "ci" / "config-repo.gitlab-ci.yml"
HIDDEN_OR_GLOBAL = {"stages", "variables", "default", "workflow", "include"}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def jobs(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in document.items()
            if name not in HIDDEN_OR_GLOBAL and not name.startswith(".")}


def resolved(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A job with its `extends` merged in (GitLab's deep merge, enough for these files)."""
    body = dict(document[name])
    parents = body.pop("extends", [])
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged.update(resolved(document, parent))
    merged.update(body)
    return merged


# This project's pipeline -------------------------------------------------------------------

def test_every_project_job_has_a_declared_stage_and_a_script() -> None:
    document = load(PROJECT_CI)
    for name in jobs(document):
        job = resolved(document, name)
        assert job.get("stage") in document["stages"], name
        assert job.get("script"), name
        for needed in job.get("needs", []):
            assert needed in jobs(document), (name, needed)


def test_the_pipeline_lints_type_checks_and_runs_the_readme_test_command() -> None:
    document = load(PROJECT_CI)
    scripts = {name: " ".join(resolved(document, name)["script"]) for name in jobs(document)}
    assert "make lint" in scripts["lint"]
    assert "make typecheck" in scripts["typecheck"]
    assert "make test" in scripts["test"]
    assert "make test" in (REPO_ROOT / "README.md").read_text()
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "ruff check" in makefile and "mypy reconciler" in makefile


def test_the_image_is_published_on_tags_only() -> None:
    document = load(PROJECT_CI)
    publish = resolved(document, "image:publish")
    assert publish["rules"] == [{"if": "$CI_COMMIT_TAG"}]
    assert "--destination" in " ".join(publish["script"])
    build = resolved(document, "image:build")
    assert "--no-push" in " ".join(build["script"])
    assert {"if": "$CI_COMMIT_TAG", "when": "never"} in build["rules"]


# The config repo template ------------------------------------------------------------------

def config_repo(root: Path) -> Path:
    """A Git checkout of the example config repo, as a CI job sees it."""
    shutil.copytree(REPO_ROOT / "desired-state", root)
    files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    repo = git.Repo.init(root)
    repo.index.add(files)
    repo.index.commit("desired state", author=git.Actor("ci", "ci@example.org"),
                      committer=git.Actor("ci", "ci@example.org"))
    return root


def run_job(name: str, *, workdir: Path, variables: dict[str, str]
            ) -> subprocess.CompletedProcess[str]:
    """The job's script lines in one bash, like GitLab's shell executor, template vars set."""
    document = load(TEMPLATE)
    job = resolved(document, name)
    script = "\n".join(["set -eo pipefail", *job["script"]])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "RECONCILER_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({k: str(v) for k, v in document["variables"].items()})
    env.update(variables)
    return subprocess.run(["bash", "-c", script], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


MR = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7",
      "CI_PROJECT_ID": "42", "CI_COMMIT_SHORT_SHA": "abc1234",
      "CI_JOB_URL": "https://gitlab.example.org/job/1"}


def test_the_template_runs_only_in_merge_request_pipelines() -> None:
    document = load(TEMPLATE)
    for name in ("reconciler:validate", "reconciler:diff"):
        rules = resolved(document, name)["rules"]
        assert all("merge_request_event" in rule["if"] for rule in rules)
    assert resolved(document, "reconciler:diff")["artifacts"]["paths"] == ["reconciler-diff.txt"]


@pytest.mark.integration
def test_validate_job_passes_on_a_valid_repo_and_fails_with_path_and_line(tmp_path: Path
                                                                          ) -> None:
    root = config_repo(tmp_path / "repo")
    passed = run_job("reconciler:validate", workdir=root, variables=MR)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    portal = root / "dirac-cert" / "web" / "portal.yaml"
    portal.write_text(portal.read_text().replace("instances: 1", "instances: -1"))
    failed = run_job("reconciler:validate", workdir=root, variables=MR)
    assert failed.returncode != 0
    assert "dirac-cert/web/portal.yaml:" in failed.stdout + failed.stderr


@pytest.mark.integration
def test_diff_job_keeps_the_plan_as_an_artifact_and_passes_when_merging_changes_marathon(
    tmp_path: Path, devcluster: launch.RunningCluster
) -> None:
    root = config_repo(tmp_path / "repo")
    result = run_job("reconciler:diff", workdir=root,
                     variables={**MR, "MARATHON_URL": devcluster.url})
    assert result.returncode == 0, result.stdout + result.stderr
    artifact = (root / "reconciler-diff.txt").read_text()
    assert "+ /dirac-cert/web/portal (create)" in artifact
    assert "lhcbdirac:v8r2p44" in artifact
    assert artifact in result.stdout


@pytest.mark.integration
def test_diff_job_fails_when_marathon_cannot_be_read(tmp_path: Path) -> None:
    root = config_repo(tmp_path / "repo")
    result = run_job("reconciler:diff", workdir=root,
                     variables={**MR, "MARATHON_URL": f"http://127.0.0.1:{free_port()}",
                                "RECONCILER_MARATHON_TIMEOUT": "2"})
    assert result.returncode == 1, result.stdout + result.stderr


@dataclass
class NotesApi:
    """GitLab's merge request notes endpoints, in memory, for one project and MR."""

    url: str
    notes: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


@pytest.fixture
def notes_api() -> Iterator[NotesApi]:
    api = NotesApi(url="")
    base = "/api/v4/projects/42/merge_requests/7/notes"

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _read(self) -> dict[str, Any]:
            api.tokens.append(self.headers.get("PRIVATE-TOKEN", ""))
            length = int(self.headers.get("Content-Length", "0"))
            return json.loads(self.rfile.read(length) or b"{}")  # type: ignore[no-any-return]

        def do_GET(self) -> None:
            self._read()
            if self.path.split("?")[0] != base:
                return self._answer(404, {"message": "404 Not Found"})
            return self._answer(200, list(reversed(api.notes)))

        def do_POST(self) -> None:
            body = self._read()
            if self.path != base:
                return self._answer(404, {"message": "404 Not Found"})
            note = {"id": len(api.notes) + 100, "body": body["body"]}
            api.notes.append(note)
            return self._answer(201, note)

        def do_PUT(self) -> None:
            body = self._read()
            for note in api.notes:
                if self.path == f"{base}/{note['id']}":
                    note["body"] = body["body"]
                    return self._answer(200, note)
            return self._answer(404, {"message": "404 Not Found"})

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_diff_job_posts_one_merge_request_note_and_updates_it_on_the_next_push(
    tmp_path: Path, devcluster: launch.RunningCluster, notes_api: NotesApi
) -> None:
    root = config_repo(tmp_path / "repo")
    variables = {**MR, "MARATHON_URL": devcluster.url, "CI_API_V4_URL": notes_api.url,
                 "RECONCILER_GITLAB_TOKEN": "glpat-secret-value"}
    first = run_job("reconciler:diff", workdir=root, variables=variables)
    assert first.returncode == 0, first.stdout + first.stderr
    (note,) = notes_api.notes
    assert "+ /dirac-cert/web/portal (create)" in note["body"]
    assert "abc1234" in note["body"]

    images = root / "images.yaml"
    images.write_text(images.read_text().replace("v8r2p44", "v8r2p45"))
    second = run_job("reconciler:diff", workdir=root,
                     variables={**variables, "CI_COMMIT_SHORT_SHA": "def5678"})
    assert second.returncode == 0, second.stdout + second.stderr
    (note,) = notes_api.notes
    assert "def5678" in note["body"] and "lhcbdirac:v8r2p45" in note["body"]
    assert set(notes_api.tokens) == {"glpat-secret-value"}
    assert "glpat-secret-value" not in first.stdout + first.stderr + second.stdout


@pytest.mark.integration
def test_without_a_token_no_note_is_posted(tmp_path: Path, devcluster: launch.RunningCluster,
                                           notes_api: NotesApi) -> None:
    root = config_repo(tmp_path / "repo")
    result = run_job("reconciler:diff", workdir=root,
                     variables={**MR, "MARATHON_URL": devcluster.url,
                                "CI_API_V4_URL": notes_api.url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert notes_api.notes == [] and notes_api.tokens == []
