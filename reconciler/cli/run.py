"""``reconciler run``: the controller, until SIGTERM or Ctrl-C.

Reads its configuration (``--config FILE`` plus ``RECONCILER_*`` variables, see
:mod:`reconciler.shell.config`), starts the embedded dev cluster when asked, the controller
jobs and the web server (webhooks, API, dashboard, metrics) in this one process.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from reconciler.shell import (
    config,
    embedded,
    environments,
    gitsource,
    leadership,
    memory,
    ports,
    signatures,
    telemetry,
    wiring,
)

log = logging.getLogger("reconciler.run")
SWITCH_INTERVAL = 0.001
"""Seconds a thread holds the interpreter before another that waits may take it."""


def _variables_help() -> str:
    """The configuration reference, from the one place the variables are described."""
    lines = [f"  {config.PREFIX}{name}: {meaning}" for name, meaning in config.VARIABLES.items()]
    return ("Configuration variables (credentials also as NAME_FILE, naming a file that holds "
            "the value, and never in the --config file):\n\n\b\n"
            + "\n".join(lines))


@click.command(epilog=_variables_help())
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="YAML file of settings (names as RECONCILER_* variables, "
                                 "lower case, without the prefix); the environment wins.")
def command(config_file: Path | None) -> None:
    """Keep Marathon equal to the config repo: poll Git (and accept webhooks), apply new
    revisions, check drift and correct or report it, serve the API, dashboard and metrics."""
    try:
        settings = config.load(config_file=config_file)
    except config.BadConfiguration as e:
        click.echo(f"configuration: {e}", err=True)
        sys.exit(1)
    if settings.zk_url and settings.environments:
        # Each environment's controller would need its own election and fence: not built.
        click.echo(f"configuration: {config.PREFIX}ZK_URL and {config.PREFIX}ENVIRONMENTS "
                   "together are not supported: run one set of replicas per environment",
                   err=True)
        sys.exit(1)
    if settings.zk_url:
        try:
            leadership.check_timing(session_timeout=settings.zk_session_timeout,
                                    marathon_timeout=settings.marathon_timeout)
        except leadership.UnsafeTiming as e:
            click.echo(f"configuration: {e}", err=True)
            sys.exit(1)
    try:
        ports.check_free(settings.listen_host, settings.listen_port)
    except OSError as e:
        click.echo(f"{e.strerror} (set {config.PREFIX}LISTEN to another host:port)", err=True)
        sys.exit(1)
    telemetry.set_secrets(settings.secrets)
    telemetry.configure_logging(settings.log_level)
    telemetry.init_sentry(settings.sentry_dsn)
    memory.tune()
    # A page's thread gives the interpreter up at each query and socket read and waits for
    # it back up to the switch interval each time, while a release's threads compute: 1 ms
    # instead of 5 keeps a page's answer near its own cost (a few ms) during a release.
    sys.setswitchinterval(SWITCH_INTERVAL)
    # Import the web stack only here: other commands never pay for it.
    from reconciler.web import app as web

    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        telemetry.event(log, "stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    child = None
    marathon_url = settings.marathon_url
    # Environments that all name their own Marathon need no embedded one.
    if settings.embedded_marathon and not (
            settings.environments and all(e.marathon_url for e in settings.environments)):
        child = embedded.start_embedded_marathon(settings.state_dir)
        marathon_url = child.url
        telemetry.event(log, "embedded dev cluster started", url=marathon_url)
    controller = None
    fleet = None
    server = None
    try:
        if settings.environments:  # one controller per environment (docs/environments.md)
            from reconciler.web import environments as web_environments
            fleet = environments.build(settings, marathon_url=marathon_url)
            application = web_environments.create_fleet_app(fleet)
        else:
            controller = wiring.build(settings, marathon_url=marathon_url)
            application = web.create_app(controller)
        server = web.Server(application, host=settings.listen_host, port=settings.listen_port)
        server.start()
        telemetry.event(log, "listening", address=f"{settings.listen_host}:"
                                                  f"{settings.listen_port}")
        (fleet or controller).start()  # type: ignore[union-attr]
        stop.wait()
    except config.BadConfiguration as e:
        click.echo(f"configuration: {e}", err=True)
        sys.exit(1)
    except (signatures.SignatureError, gitsource.BadSource) as e:
        # A host file or repo address the operator must fix: one line, no traceback.
        click.echo(f"configuration: {e.reason}", err=True)
        sys.exit(1)
    finally:
        if controller is not None:
            controller.stop()
        if fleet is not None:
            fleet.stop()
        if server is not None:
            server.stop()
        if controller is not None:
            controller.records.close()
            controller.client.close()
        if fleet is not None:
            fleet.close()
        if child is not None:
            child.stop()
