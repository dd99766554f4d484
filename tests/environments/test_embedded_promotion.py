"""``reconciler promote`` as the README says it, next to a ``reconciler run`` on the default
embedded Marathon: the same settings file declares the environments, and ``promote`` finds
the embedded dev cluster the run started through the state dir, as ``reconciler status``
does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.shell import embedded
from reconciler.shell.ports import free_port
from testbed.gitrepos import Upstream
from testbed.processes import stop_process, wait_for_http
from tests.environments import stack
from tests.support import polling

pytestmark = pytest.mark.integration


def reconciler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=plain_env(),
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def plain_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")},
            "USER": "dora"}


def test_promote_finds_the_environments_and_the_embedded_marathon_of_the_run(
        tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "git", stack.repo_files(cert_tag="v8r2p44",
                                                                  prod_tag="v8r2p44"))
    state = tmp_path / "state"
    port = free_port()
    settings = tmp_path / "reconciler.yaml"  # no marathon_url: the embedded dev cluster
    settings.write_text(yaml.safe_dump({
        "repo_url": upstream.url, "state_dir": str(state), "poll_interval": 0.5,
        "listen": f"127.0.0.1:{port}",
        "environments": [{"name": "cert", "path": "cert"},
                         {"name": "prod", "path": "prod", "promote_from": "cert",
                          "soak": 0}]}))
    log = tmp_path / "controller.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--config", str(settings)],
            env=plain_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=tmp_path)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60, process=process)

        def explain() -> str:
            return log.read_text()[-4000:]

        marathon = polling.eventually("the embedded dev cluster's URL",
                                      lambda: embedded.embedded_url(state), explain=explain)

        def on(apps: tuple[str, ...], tag: str) -> bool:
            return all(stack.running_tag(marathon, a) == tag for a in apps)

        polling.eventually("both environments on v8r2p44", lambda: on(
            stack.CERT_APPS + stack.PROD_APPS, "v8r2p44"), explain=explain)
        upstream.commit({"cert/images.yaml": stack.images("v8r2p45")},
                        message="certification: lhcbdirac v8r2p45")
        polling.eventually("cert on v8r2p45", lambda: on(stack.CERT_APPS, "v8r2p45"),
                           explain=explain)

        # Without the run's settings there are no environments: said in one line, with how.
        bare = reconciler("promote", "dirac", "--from", "cert", "--to", "prod", cwd=tmp_path)
        assert bare.returncode == 1, bare.stdout + bare.stderr
        assert "no environment 'prod'" in bare.stderr and "--config" in bare.stderr

        promoted = reconciler("promote", "dirac", "--from", "cert", "--to", "prod",
                              "--config", str(settings), cwd=tmp_path)
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        assert "pushed" in promoted.stdout, promoted.stdout
        polling.eventually("prod on v8r2p45", lambda: on(stack.PROD_APPS, "v8r2p45"),
                           explain=explain)
    finally:
        stop_process(process)

    # With the run stopped, its dev cluster is gone: promote says what to do.
    stopped = reconciler("promote", "dirac", "--to", "prod", "--check", "--config",
                         str(settings), cwd=tmp_path)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "no Marathon URL" in stopped.stderr and "reconciler run" in stopped.stderr
