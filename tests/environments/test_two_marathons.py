"""One ``reconciler run`` targeting two dev clusters at once: certification on one, production
on the other, each environment kept on its own Marathon; promotion through the API (refused
before the soak, with what is missing) and through ``reconciler promote``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from reconciler.devcluster import launch
from reconciler.shell.ports import free_port
from testbed.apps import live_apps
from testbed.gitrepos import Upstream
from testbed.processes import stop_process, wait_for_http
from tests.environments import stack
from tests.support import polling

TOKEN = "api-token-5e1d"
REPO_ROOT = Path(__file__).resolve().parents[2]


def settings_env(tmp_path: Path, upstream: Upstream, cert: launch.RunningCluster,
                 prod: launch.RunningCluster, *, soak: str) -> dict[str, str]:
    password = tmp_path / "prod-marathon-password"
    password.write_text("s3cret-prod\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    return {**env, "RECONCILER_REPO_URL": upstream.url,
            "RECONCILER_STATE_DIR": str(tmp_path / "state"),
            "RECONCILER_POLL_INTERVAL": "0.5", "RECONCILER_API_TOKEN": TOKEN,
            "RECONCILER_ENVIRONMENTS": stack.environments(
                cert={"marathon_url": cert.url},
                prod={"marathon_url": prod.url, "marathon_username": "reconciler",
                      "marathon_password_file": str(password), "soak": soak})}


def test_one_controller_keeps_each_environment_on_its_own_marathon_and_promotes(
    tmp_path: Path, clusters: tuple[launch.RunningCluster, launch.RunningCluster],
) -> None:
    cert, prod = clusters
    upstream = Upstream.create(tmp_path / "git", stack.repo_files(cert_tag="v8r2p44",
                                                                  prod_tag="v8r2p44"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "controller.log"
    env = {**settings_env(tmp_path, upstream, cert, prod, soak="1h"),
           "RECONCILER_LISTEN": f"127.0.0.1:{port}"}
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "reconciler", "run"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=tmp_path)
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process)

        def explain() -> str:
            return log.read_text()[-4000:]

        def on(cluster: launch.RunningCluster, apps: tuple[str, ...], tag: str) -> bool:
            return all(stack.running_tag(cluster.url, a) == tag for a in apps)

        polling.eventually("cert on its cluster, prod on its own", lambda: on(
            cert, stack.CERT_APPS, "v8r2p44") and on(prod, stack.PROD_APPS, "v8r2p44"),
            explain=explain)
        assert set(live_apps(cert.url)) == set(stack.CERT_APPS)
        assert set(live_apps(prod.url)) == set(stack.PROD_APPS)

        listed = requests.get(f"{url}/api/v1/environments", timeout=10).json()["environments"]
        assert [(e["name"], e["marathon"], e["promoteFrom"]) for e in listed] == [
            ("cert", [cert.url], None), ("prod", [prod.url], "cert")]
        for name, apps in (("cert", stack.CERT_APPS), ("prod", stack.PROD_APPS)):
            # The tags run before the deployment is over: in sync once it is (events, then the
            # live cache, follow within a second or so).
            shown = polling.eventually(f"{name} in sync", lambda n=name: (
                s := requests.get(f"{url}/api/v1/environments/{n}/apps", timeout=10).json())
                and {a["state"] for a in s["apps"]} == {"in sync"} and s, explain=explain)
            assert {a["app_id"] for a in shown["apps"]} == set(apps)
            assert {a["state"] for a in shown["apps"]} == {"in sync"}
        status = requests.get(f"{url}/api/v1/status", timeout=10).json()
        assert [s["environment"] for s in status["environments"]] == ["cert", "prod"]
        assert polling.eventually("ready", lambda: requests.get(f"{url}/readyz", timeout=10).ok)
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        assert 'reconciler_environment_apps{environment="cert",state="in sync"} 2.0' in metrics
        assert 'reconciler_environment_apps{environment="prod",state="in sync"} 1.0' in metrics
        assert "s3cret-prod" not in log.read_text()

        # A release in certification reaches certification's cluster only.
        upstream.commit({"cert/images.yaml": stack.images("v8r2p45")},
                        message="certification: lhcbdirac v8r2p45")
        polling.eventually("cert on v8r2p45", lambda: on(cert, stack.CERT_APPS, "v8r2p45"),
                           explain=explain)
        assert on(prod, stack.PROD_APPS, "v8r2p44")

        promote = f"{url}/api/v1/environments/prod/promotions/dirac"
        assert requests.post(promote, timeout=30).status_code == 401
        refused = requests.post(promote, headers={"Authorization": f"Bearer {TOKEN}",
                                                  "X-Reconciler-User": "alice"}, timeout=30)
        assert refused.status_code == 409, refused.text
        for app_id in stack.CERT_APPS:
            assert f"{app_id}: healthy since" in refused.json()["detail"]
        check: dict[str, Any] = requests.get(f"{promote}/check", timeout=30).json()
        # An image name is bounded before it reaches the promoter or the audit log.
        huge = f"{url}/api/v1/environments/prod/promotions/{'a' * 5000}"
        assert requests.post(huge, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=30).status_code == 422
        assert requests.get(f"{huge}/check", timeout=30).status_code == 422
        audit = str(requests.get(f"{url}/api/v1/environments/prod/audit", timeout=30,
                                 headers={"Authorization": f"Bearer {TOKEN}"}).json())
        assert "dirac cert -> prod" in audit and "a" * 300 not in audit, audit[:2000]
        assert check["decision"] == "wait" and check["ready_at"]
        page = requests.get(f"{url}/environments/prod/promotions", timeout=30)
        assert page.ok and "Promotions from cert to prod" in page.text
        assert "soak of 1h not over" in page.text
        overview = requests.get(f"{url}/", timeout=10).text
        assert 'href="/environments/prod/promotions"' in overview

        # From the command line: refused with the same soak (exit 3), nothing written.
        checked = subprocess.run(
            [sys.executable, "-m", "reconciler", "promote", "dirac", "--to", "prod",
             "--check"], env=settings_env(tmp_path, upstream, cert, prod, soak="1h"),
            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
        assert checked.returncode == 3, checked.stdout + checked.stderr
        assert f"{stack.CERT_APPS[0]}: healthy since" in checked.stdout

        # The same request where production's soak is 0: promoted.
        cli = subprocess.run(
            [sys.executable, "-m", "reconciler", "promote", "dirac", "--from", "cert",
             "--to", "prod"], env={**settings_env(tmp_path, upstream, cert, prod, soak="0"),
                                   "USER": "carol"},
            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "promotable" in cli.stdout and "pushed" in cli.stdout

        polling.eventually("prod on v8r2p45", lambda: on(prod, stack.PROD_APPS, "v8r2p45"),
                           explain=explain)
        promotions = polling.eventually("the promotion linked", lambda: [
            p for p in requests.get(f"{url}/api/v1/environments/prod/promotions",
                                    timeout=10).json()["promotions"] if p["targetRelease"]],
            explain=explain)
        assert promotions[0]["requestedBy"] == "carol"
        # Production's release of the promotion commit says it is one.
        released = requests.get(f"{url}/api/v1/environments/prod/releases", timeout=10).json()
        cause = next(r["cause"] for r in released["releases"]
                     if r["revision"] == promotions[0]["targetRelease"])
        assert cause.startswith("promoted from cert (dirac v8r2p45) by carol"), cause
        assert promotions[0]["sourceRelease"] and promotions[0]["commit"] == promotions[0][
            "targetRelease"]
        assert set(live_apps(cert.url)) == set(stack.CERT_APPS)
        assert set(live_apps(prod.url)) == set(stack.PROD_APPS)
    finally:
        stop_process(process)
