"""The guided demo: a dev cluster, a local config repo and the controller, then a story.

``reconciler demo`` starts the dev cluster and ``reconciler run`` as child processes, turns
the example ``desired-state/`` into a local Git repository, and walks through what the
controller is for: the first sync, a release (one tag bump in ``images.yaml`` rolls every
app), a broken release rolled back on its own, and a hand edit in Marathon (drift) corrected.

Every step is checked where it matters, in live Marathon (the dev cluster's API), and the
controller's own account of it (its API), so ``--non-interactive`` exits 0 only when the
whole story behaved. Child processes are always stopped, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import yaml

from reconciler.core import load as loading
from reconciler.core import model
from reconciler.demo import stage
from reconciler.devcluster import launch
from reconciler.shell import directory, http, marathon, ports, records

GROUP = "/dirac-cert"
DRIFT_APP = "/dirac-cert/datamanagement/filecatalog"
IMAGE = "lhcbdirac"


class Story:
    """The demo's steps, in order, against running children."""

    def __init__(self, options: stage.Options, *, out: IO[str],
                 pause: Callable[[str], None], children: stage.Children) -> None:
        self.options = options
        self.out = out
        self.pause = pause
        self.children = children
        self.repo_dir = options.workdir / "config-repo"
        self.state_dir = options.workdir / "state"
        self.marathon_url = ""
        self.controller_url = ""
        self.client: marathon.MarathonClient | None = None
        self.store: records.RecordStore | None = None
        self._shown: dict[str, str] = {}

    # -- output --------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def heading(self, number: int, title: str) -> None:
        self.say()
        self.say(f"== {number}. {title}")

    # -- setup ---------------------------------------------------------------------------

    def prepare_repo(self) -> None:
        """The example as a Git repo, with a short rollout deadline so rollbacks come fast."""
        if self.repo_dir.exists():
            shutil.rmtree(self.repo_dir)
        shutil.copytree(self.options.example, self.repo_dir,
                        ignore=shutil.ignore_patterns(".git"))
        settings_path = self.repo_dir / "reconciler.yaml"
        settings = yaml.safe_load(settings_path.read_text()) if settings_path.exists() else None
        settings = dict(settings or {})
        settings["deadlines"] = {GROUP: self.options.timings.deadline}
        settings_path.write_text(
            "# Written by `reconciler demo`: short rollout deadlines so the demo is quick.\n"
            + yaml.safe_dump(settings, sort_keys=False))
        stage.gitsource().init_repository(self.repo_dir, message="Desired state of the DIRAC "
                                  "certification services")

    def start_devcluster(self) -> None:
        # Marathon's usual port when it is free (the URLs the demo prints are then the familiar
        # ones), else any free port: the launcher's child tells which one it got.
        running = None
        for port in (8080, 0):
            try:
                running = launch.launch(state_dir=self.options.workdir / "devcluster", port=port,
                                        log_path=self.options.workdir / "devcluster.log",
                                        timeout=60)
                break
            except launch.DidNotStart as e:
                failure = e
        if running is None:
            raise stage.StepFailed(str(failure))
        self.children.adopt("dev cluster", running.process)
        self.marathon_url = running.url
        self.client = marathon.MarathonClient(
            marathon.ClientSettings(urls=(self.marathon_url,), retries=0))

    def start_controller(self) -> None:
        port = ports.port_or_free(8000)
        self.controller_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "RECONCILER_MARATHON_URL": self.marathon_url,
            "RECONCILER_REPO_URL": self.repo_dir.as_uri(),
            "RECONCILER_REPO_REF": stage.gitsource().current_branch(self.repo_dir),
            "RECONCILER_REPO_PATH": ".",
            "RECONCILER_POLL_INTERVAL": str(self.options.timings.poll_interval),
            "RECONCILER_STATE_DIR": str(self.state_dir),
            "RECONCILER_LISTEN": f"127.0.0.1:{port}",
        }
        env.pop("RECONCILER_API_TOKEN", None)
        self.children.start("controller", [sys.executable, "-m", "reconciler", "run"],
                            log=self.options.workdir / "controller.log", env=env)
        self.wait_for(lambda: http.answers(f"{self.controller_url}/healthz"),
                      "the controller to answer /healthz", timeout=60)

    # -- watching ------------------------------------------------------------------------

    def wait_for(self, condition: Callable[[], bool], what: str, *,
                 timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.options.timings.step_timeout)
        while time.monotonic() < deadline:
            self.children.check_alive()
            if condition():
                return
            time.sleep(self.options.timings.tick)
        raise stage.StepFailed(f"timed out waiting for {what}")

    @property
    def marathon(self) -> marathon.MarathonClient:
        assert self.client is not None, "start_devcluster() first"
        return self.client

    def live_apps(self) -> list[dict[str, Any]]:
        try:
            return self.marathon.list_apps(prefix=GROUP)
        except marathon.MarathonError:
            return []

    def show_live(self, apps: list[dict[str, Any]]) -> None:
        """One line per app whenever its image or task counts change: the rollout, live."""
        for app in sorted(apps, key=lambda a: str(a["id"])):
            line = (f"{app['container']['docker']['image']:<24} "
                    f"{app.get('tasksHealthy', 0)}/{app['instances']} healthy, "
                    f"{app.get('tasksRunning', 0)} running")
            if app.get("deployments"):
                line += ", deploying"
            if self._shown.get(app["id"]) != line:
                self._shown[app["id"]] = line
                self.say(f"  marathon  {app['id']:<42} {line}")

    def converged(self, tag: str, *, expected_apps: int) -> bool:
        """Every app live on ``IMAGE:tag``, all its tasks healthy, no deployment left."""
        apps = self.live_apps()
        self.show_live(apps)
        if len(apps) != expected_apps:
            return False
        for app in apps:
            if app["container"]["docker"]["image"] != f"{IMAGE}:{tag}":
                return False
            if app.get("deployments"):
                return False
            if app.get("tasksRunning", 0) != app["instances"]:
                return False
            if app.get("healthChecks") and app.get("tasksHealthy", 0) != app["instances"]:
                return False
        return True

    def controller_revision(self) -> str | None:
        """The revision the controller last synced, from its API (None until it has one)."""
        try:
            status = http.get_json(f"{self.controller_url}/api/v1/status", timeout=5)
        except http.HttpError:
            return None
        revision = status.get("revision") or status.get("lastSyncedRevision")
        return str(revision) if revision else None

    # -- the story -----------------------------------------------------------------------

    def run(self) -> None:
        options = self.options
        self.heading(1, "Start: a dev cluster, a config repo in Git, the controller")
        self.prepare_repo()
        desired = self.load_desired()
        expected_apps = len(desired.apps)
        if DRIFT_APP not in desired.apps:
            raise stage.StepFailed(f"the example config repo has no app {DRIFT_APP} to drift")
        drift_desired = int(desired.apps[DRIFT_APP].definition.get("instances", 1))
        self.say(f"  config repo   {self.repo_dir} (a Git repository made from "
                 f"{options.example})")
        self.start_devcluster()
        self.say(f"  dev cluster   {self.marathon_url} (Marathon's REST API v2)")
        self.start_controller()
        self.say(f"  controller    {self.controller_url} (dashboard), polling Git every "
                 f"{options.timings.poll_interval:g}s")
        self.say("  The controller finds Marathon empty and creates every app of the repo,")
        self.say("  dependencies first (the configuration server before the services).")
        self.wait_for(lambda: self.converged("v8r2p44", expected_apps=expected_apps),
                      "the first sync to bring every app up, healthy")
        self.say(f"  ok: {expected_apps} apps live on {IMAGE}:v8r2p44, all healthy")

        self.pause("release a new DIRAC version (one tag bump in images.yaml)")
        self.heading(2, f"Release: {IMAGE} v8r2p44 -> {options.release_tag}")
        sha = self.bump_tag(options.release_tag, f"Release DIRAC {options.release_tag}")
        self.say(f"  committed {sha[:10]}: images.yaml tag: {options.release_tag}")
        self.say("  Every app uses the image by name, so every app rolls, one wave of")
        self.say("  dependencies at a time, each as a Marathon rolling upgrade:")
        self.wait_for(lambda: self.converged(options.release_tag, expected_apps=expected_apps),
                      f"every app to run {IMAGE}:{options.release_tag}, healthy")
        self.say(f"  ok: every app live on {IMAGE}:{options.release_tag}")

        self.pause("release a broken version (its health checks never pass)")
        self.heading(3, f"Broken release: {options.release_tag} -> {options.broken_tag}")
        sha = self.bump_tag(options.broken_tag, f"Release DIRAC {options.broken_tag}")
        self.say(f"  committed {sha[:10]}: images.yaml tag: {options.broken_tag}")
        self.say("  Its tasks start but never turn healthy. After the "
                 f"{options.timings.deadline:g}s deadline (reconciler.yaml)")
        self.say("  the controller rolls the app back to the version that was live, and skips")
        self.say("  the apps that depend on it:")
        self.wait_for(self.broken_release_was_tried, f"Marathon to receive {options.broken_tag}")
        self.wait_for(lambda: self.converged(options.release_tag, expected_apps=expected_apps),
                      f"the rollback to {options.release_tag}")
        rollbacks = self.wait_for_records(lambda store: store.rollbacks(),
                                          "the controller to record the rollback")
        for rollback in rollbacks:
            self.say(f"  record    rollback of {rollback.app_id}: {rollback.reason} "
                     f"({rollback.outcome})")
        self.say(f"  ok: rolled back, every app live on {IMAGE}:{options.release_tag} again;")
        self.say("     the failed revision stays in Git until someone fixes it forward.")
        sha = self.bump_tag(options.release_tag, f"Back to DIRAC {options.release_tag}")
        self.say(f"  committed {sha[:10]}: the release manager reverts the tag")

        self.pause("change Marathon by hand, outside Git (drift)")
        drifted = drift_desired + 2
        self.heading(4, f"Drift: someone scales {DRIFT_APP} to {drifted} in Marathon")
        known = {d.drift_id for d in self.record_store().drifts(app_id=DRIFT_APP)}
        self.marathon.scale_app(DRIFT_APP, drifted, force=True)
        self.say(f"  PUT /v2/apps{DRIFT_APP} {{\"instances\": {drifted}}} sent to Marathon "
                 "directly.")
        self.say(f"  Git says {drift_desired}; the repo's driftPolicy for {GROUP} is `correct`:")
        # Judged from the controller's own record of this drift, not from live alone: a sync
        # that happened to run meanwhile would also put the instances back.
        drifts = self.wait_for_records(
            lambda store: [d for d in store.drifts(app_id=DRIFT_APP)
                           if d.drift_id not in known and d.action == "corrected"
                           and d.status == "resolved"],
            "the controller to record the drift as corrected")
        self.wait_for(lambda: self.instances(DRIFT_APP) == drift_desired
                      and self.converged(options.release_tag, expected_apps=expected_apps),
                      "the app back at its desired instances")
        for drift in drifts:
            self.say(f"  record    drift on {drift.app_id}: {drift.kind}, policy {drift.policy}, "
                     f"{drift.action or 'no action'}, {drift.status}")
        self.say(f"  ok: drift detected and corrected, {DRIFT_APP} is back to "
                 f"{drift_desired} instances")

    def record_store(self) -> records.RecordStore:
        """The controller's record store (SQLite, shared safely), opened on first use."""
        if self.store is None:
            self.store = records.open_store(self.state_dir)
        return self.store

    def wait_for_records(self, query: Callable[[records.RecordStore], list[Any]],
                         what: str) -> list[Any]:
        """What the controller recorded, once it has: ``query`` found something."""
        store = self.record_store()
        found: list[Any] = []

        def recorded() -> bool:
            found[:] = query(store)
            return bool(found)

        self.wait_for(recorded, what, timeout=30)
        return found

    def load_desired(self) -> model.DesiredState:
        files, revision = directory.read_directory(self.repo_dir)
        try:
            return loading.load_desired_state(files, revision=revision)
        except model.InvalidDesiredState as e:
            problems = "\n".join(str(p) for p in e.problems)
            raise stage.StepFailed(f"the example config repo is invalid:\n{problems}") from e

    def bump_tag(self, tag: str, message: str) -> str:
        images = self.repo_dir / "images.yaml"
        catalog = yaml.safe_load(images.read_text())
        old = catalog["images"][IMAGE]["tag"]
        images.write_text(images.read_text().replace(f"tag: {old}", f"tag: {tag}", 1))
        return stage.gitsource().commit_all(self.repo_dir, message=message)

    def broken_release_was_tried(self) -> bool:
        """Some app runs the broken image in Marathon (before the controller rolls it back)."""
        wanted = f"{IMAGE}:{self.options.broken_tag}"
        apps = self.live_apps()
        self.show_live(apps)
        return any(app["container"]["docker"]["image"] == wanted for app in apps)

    def instances(self, app_id: str) -> int:
        try:
            count: int = self.marathon.get_app(app_id)["instances"]
        except marathon.MarathonError:
            return -1
        self.show_live(self.live_apps())
        return count

    def where_to_look(self) -> None:
        self.say()
        self.say("== Where to look")
        # Addresses only of servers that stay up: a non-interactive demo stops them on exit.
        keeping = self.options.interactive
        if keeping and self.children.alive("controller"):
            self.say(f"  dashboard        {self.controller_url}/")
            self.say(f"  API              {self.controller_url}/api/v1/")
            self.say(f"  metrics          {self.controller_url}/metrics")
        if keeping and self.children.alive("dev cluster"):
            self.say(f"  dev cluster      {self.marathon_url}/v2/apps")
        if not keeping:
            self.say("  (the servers stop with the demo; run it without --non-interactive to "
                     "keep them up)")
        self.say(f"  logs             {self.options.workdir}/controller.log, devcluster.log")
        self.say("  try:")
        self.say(f"    reconciler diff --marathon {self.marathon_url} {self.repo_dir}")
        self.say(f"    reconciler history --state-dir {self.state_dir}")
        self.say(f"    edit {self.repo_dir}/images.yaml, then git commit -am 'release'")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.client is not None:
            self.client.close()
            self.client = None


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so children are stopped either way."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(options: stage.Options, *, out: IO[str], pause: Callable[[str], None],
        wait_at_end: Callable[[], None]) -> None:
    """Run the whole story; raises :class:`stage.StepFailed` when a step misbehaves."""
    options.workdir.mkdir(parents=True, exist_ok=True)
    children = stage.Children()
    story = Story(options, out=out, pause=pause, children=children)
    with _signals_raise():
        try:
            story.run()
            story.where_to_look()
            wait_at_end()
        finally:
            story.close()
            children.stop_all()


def wait_forever() -> None:
    """Keep the children up for a look around, until Ctrl-C."""
    while True:
        time.sleep(3600)
