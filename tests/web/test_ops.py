"""``/healthz`` follows the controller's scheduler: a task whose scheduler died is reported
unhealthy, so that Marathon's health check replaces it."""

from __future__ import annotations

from pathlib import Path

import requests

from reconciler.shell import config, wiring
from reconciler.shell.ports import free_port
from reconciler.web import app as web
from tests.web import server


def test_healthz_is_503_unless_the_scheduler_runs(tmp_path: Path) -> None:
    settings = config.load({"RECONCILER_STATE_DIR": str(tmp_path / "state"),
                            "RECONCILER_POLL_INTERVAL": "3600",
                            "RECONCILER_DRIFT_INTERVAL": "3600"})
    # Nobody listens there: the controller's attempts fail, which /healthz does not care about.
    controller = wiring.build(settings, marathon_url=f"http://127.0.0.1:{free_port()}")
    with server.serving(web.create_app(controller, with_dashboard=False)) as url:
        before = requests.get(f"{url}/healthz", timeout=10)
        assert (before.status_code, before.json()) == (503, {"alive": False})
        controller.start()
        try:
            running = requests.get(f"{url}/healthz", timeout=10)
            assert (running.status_code, running.json()) == (200, {"alive": True})
        finally:
            controller.stop()
        after = requests.get(f"{url}/healthz", timeout=10)
        assert after.status_code == 503
