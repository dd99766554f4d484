"""Several environments under one ``reconciler run``: one controller per environment, and
the promotions between them.

Each environment of ``RECONCILER_ENVIRONMENTS`` is a folder of the config repo with its own
``images.yaml`` and ``reconciler.yaml``, reconciled by its own :class:`controller.Controller`:
its own Git source (the folder), its own Marathon client (the environment's URL and
credentials, or ``RECONCILER_MARATHON_URL``'s), and its own record store in
``<state dir>/environments/<name>`` (records are tied to one Marathon, and each environment's
revisions, releases and drift are its own). Nothing is shared between two controllers but
the process, so each environment stays on its own Marathon.

:class:`Fleet` starts and stops them together, sums up their health and readiness (a
reason is prefixed by its environment), and runs the promoter's jobs: linking each
promotion to the release it became, and the opt-in ``auto_promote`` policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.core import model
from reconciler.shell import (
    bumper,
    config,
    marathon,
    promoter,
    records,
    scheduler,
    telemetry,
    wiring,
)
from reconciler.shell import controller as controlling

log = logging.getLogger(__name__)

LINK_JOB = "promotion-links"
AUTO_JOB = "auto-promote"


def state_dir(settings: config.Settings, env: config.Environment) -> Path:
    """Where ``env`` keeps its records and its Git clone."""
    return settings.state_dir / "environments" / env.name


def find(settings: config.Settings, name: str) -> config.Environment:
    """The environment called ``name``; raises :class:`config.BadConfiguration`."""
    for env in settings.environments:
        if env.name == name:
            return env
    known = ", ".join(e.name for e in settings.environments) or "none declared"
    raise config.BadConfiguration(
        f"no environment {name!r} (known: {known}; declare them as for `reconciler run`: "
        f"{config.PREFIX}ENVIRONMENTS, or `environments:` in the --config file)")


def environment_settings(settings: config.Settings, env: config.Environment
                         ) -> config.Settings:
    """The settings of ``env``'s controller: the global ones with the environment's folder,
    state directory, record store and (when it names one) Marathon and credentials: an
    environment with a Marathon of its own is sent only its own credentials."""
    if settings.database_url and env.database_url_file is None:
        raise config.BadConfiguration(
            f"{config.PREFIX}DATABASE_URL is one record store; environment {env.name} needs "
            "its own: set its database_url_file, or leave the variable unset (SQLite per "
            "environment)")
    update: dict[str, Any] = {"repo_path": env.path, "state_dir": state_dir(settings, env),
                              "database_url": env.database_url()}
    if settings.public_url:  # notifications link to the environment's own pages
        update["public_url"] = f"{settings.public_url}/environments/{env.name}"
    if env.marathon_url is not None:
        password, token = env.credentials()
        update.update(marathon_url=env.marathon_url, marathon_username=env.marathon_username,
                      marathon_password=password, marathon_token=token)
    return settings.model_copy(update=update)


@dataclass(frozen=True)
class Member:
    environment: config.Environment
    controller: controlling.Controller


class Fleet:
    """The controllers of one ``reconciler run``, one per environment, and the promoter."""

    def __init__(self, *, settings: config.Settings, members: Sequence[Member],
                 promoting: promoter.Promoter) -> None:
        self.settings = settings
        self.members = {m.environment.name: m for m in members}
        self.promoter = promoting
        self._scheduler = scheduler.Scheduler()

    def start(self) -> None:
        for member in self.members.values():
            member.controller.start()
        every = self.settings.poll_interval
        self._scheduler.every(LINK_JOB, self._link_releases, seconds=every, first_in=every)
        if any(m.environment.auto_promote for m in self.members.values()):
            self._scheduler.every(AUTO_JOB, self._promote_soaked, seconds=every,
                                  first_in=every)
        self._scheduler.start()
        telemetry.event(log, "environments started", environments=[
            f"{m.environment.name}={m.environment.path}" for m in self.members.values()])

    def _link_releases(self) -> None:
        self.promoter.link_releases()

    def _promote_soaked(self) -> None:
        try:
            self.promoter.promote_soaked()
        except promoter.PromotionError as e:  # Git down, say: the next run tries again
            telemetry.event(log, "auto-promotion failed", level=logging.WARNING,
                            reason=e.reason)

    def stop(self) -> None:
        self._scheduler.shutdown()
        for member in self.members.values():
            member.controller.stop()

    def close(self) -> None:
        for member in self.members.values():
            member.controller.records.close()
            member.controller.client.close()

    def trigger_poll(self, trigger: model.Trigger = model.Trigger.WEBHOOK) -> None:
        """A push to the config repo: every environment polls (they share the repo)."""
        for member in self.members.values():
            member.controller.trigger_poll(trigger)

    @property
    def alive(self) -> bool:
        return self._scheduler.running and all(m.controller.alive
                                               for m in self.members.values())

    def not_ready_because(self) -> list[str]:
        return [f"{name}: {reason}" for name, member in self.members.items()
                for reason in member.controller.not_ready_because()]

    def status(self) -> dict[str, Any]:
        return {"environments": [{"environment": name, **m.controller.status().as_json()}
                                 for name, m in self.members.items()]}


def build(settings: config.Settings, *, marathon_url: str | None = None,
          clock: Callable[[], float] = time.time) -> Fleet:
    """A controller per environment and their promoter, wired from settings; not started.

    ``marathon_url`` replaces ``RECONCILER_MARATHON_URL`` for the environments that name no
    Marathon of their own (the embedded dev cluster's address)."""
    members: list[Member] = []
    try:
        for env in settings.environments:
            own = environment_settings(settings, env)
            members.append(Member(environment=env, controller=wiring.build(
                own, marathon_url=None if env.marathon_url else marathon_url,
                environment=env.name)))
    except BaseException:
        for member in members:
            member.controller.records.close()
            member.controller.client.close()
        raise
    sides = {m.environment.name: promoter.Side(
        environment=m.environment, records=m.controller.records,
        live_apps=m.controller.live_apps) for m in members}
    return Fleet(settings=settings, members=members, promoting=promoter.Promoter(
        sides=sides, copy=bumper.working_copy(settings, settings.state_dir / "promotions"),
        clock=clock))


@dataclass
class Opened:
    """Environments opened for one command (``reconciler promote``): the promoter over their
    records and Marathons; :meth:`close` releases them."""

    promoter: promoter.Promoter
    stores: list[records.RecordStore]
    clients: list[marathon.MarathonClient]

    def close(self) -> None:
        for store in self.stores:
            store.close()
        for client in self.clients:
            client.close()


def open_for_promotion(settings: config.Settings, *, names: Sequence[str], copy_dir: Path,
                       marathon_url: str | None = None) -> Opened:
    """The environments ``names`` with their records and Marathon clients, for a promoter
    outside ``reconciler run``. ``marathon_url`` replaces ``RECONCILER_MARATHON_URL`` for the
    environments that name no Marathon of their own (the embedded dev cluster's address,
    as for :func:`build`)."""
    stores: list[records.RecordStore] = []
    clients: list[marathon.MarathonClient] = []
    sides: dict[str, promoter.Side] = {}
    try:
        for name in names:
            env = find(settings, name)
            own = environment_settings(settings, env)
            stores.append(records.open_store(own.state_dir, url=own.database_url))
            clients.append(marathon.MarathonClient(own.client_settings(
                urls=None if env.marathon_url else marathon_url)))
            sides[name] = promoter.Side(environment=env, records=stores[-1],
                                        live_apps=_live_apps(clients[-1]))
    except BaseException:
        Opened(promoter=promoter.Promoter(sides={}, copy=bumper.working_copy(settings, copy_dir)),
               stores=stores, clients=clients).close()
        raise
    copy = bumper.working_copy(settings, copy_dir)
    return Opened(promoter=promoter.Promoter(sides=sides, copy=copy), stores=stores,
                  clients=clients)


def _live_apps(client: marathon.MarathonClient) -> Callable[[], list[model.JSON]]:
    return lambda: client.list_apps(embed=marathon.LIVE_EMBED)
