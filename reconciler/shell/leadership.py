"""Leadership: which replica of ``reconciler run`` may write to Marathon, elected in ZooKeeper.

The only module that imports ``kazoo``. Any number of replicas contend for one lock
(``<path>/leader``, kazoo's lock recipe: ephemeral sequential nodes, the lowest holds it);
the holder is the leader until its ZooKeeper session ends. Winning, it bumps the term
(``<path>/term``: the znode's version, set in one transaction that also checks the winner's
lock node still exists), so terms only grow and no two leaders share one.

Fencing (:meth:`Leadership.fence`, called by the Marathon client before every write attempt,
and by waiters): writes are allowed only while this replica holds the lock and its session is
connected. kazoo reports a silent server as SUSPENDED after its read timeout, two thirds of
the session timeout; the server ends the session (and a follower may win) only after the
whole timeout. So the last third must outlast a write that was already on the wire when
the connection went quiet (:func:`check_timing` refuses settings where it does not)::

    last word from ZooKeeper ---- 2/3 T: SUSPENDED, fence closed ---- T: session expired,
                                  + a write in flight ends           a follower may lead

A reconnect within the session keeps the lock and the term (the fence reopens); a session
lost gives the lock up, and the replica contends again once connected.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kazoo import exceptions as kazoo_errors
from kazoo.client import KazooClient, KazooState
from kazoo.security import make_digest_acl

from reconciler.shell import config, config_values, marathon, telemetry

log = logging.getLogger(__name__)

REPLICA_HEADER = "X-Reconciler-Replica"
TERM_HEADER = "X-Reconciler-Term"
"""Sent with every write to Marathon (which ignores unknown headers): who wrote, in which term."""

RECORD_MARGIN = 0.5
"""Seconds kept on top of a write's stop time for recording Marathon's answer."""


class UnsafeTiming(ValueError):
    """The session timeout is too short for the fence to hold: refuse to start."""


class Role(enum.StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"
    SUSPENDED = "suspended"
    """Was leading, lost contact with ZooKeeper: not writing until the session is back."""
    SINGLE = "single"
    """No ZooKeeper configured: the only replica, always writing."""


def check_timing(*, session_timeout: float, marathon_timeout: float) -> None:
    """Refuse a session timeout whose last third (after kazoo notices a silent server, before
    the server ends the session) is shorter than a write in flight may take."""
    stop = marathon.write_stop_seconds(marathon_timeout) + RECORD_MARGIN
    if session_timeout / 3 <= stop:
        raise UnsafeTiming(
            f"RECONCILER_ZK_SESSION_TIMEOUT ({session_timeout:g} s) is too short: a leader cut "
            f"off from ZooKeeper notices it after 2/3 of the session and then needs up to "
            f"{stop:g} s to finish a write already sent (connect + read timeout of "
            f"RECONCILER_MARATHON_TIMEOUT={marathon_timeout:g} s, plus {RECORD_MARGIN:g} s to "
            f"record the answer), before the session expires and another replica may lead. "
            f"Set the session timeout above {3 * stop:g} s or lower RECONCILER_MARATHON_TIMEOUT")


def from_settings(settings: config.Settings) -> Leadership:
    """The leadership of a ``reconciler run`` configured with ``RECONCILER_ZK_URL``; raises
    :class:`UnsafeTiming` when its session timeout cannot fence it."""
    assert settings.zk_url is not None
    check_timing(session_timeout=settings.zk_session_timeout,
                 marathon_timeout=settings.marathon_timeout)
    host = settings.listen_host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        host = socket.gethostname()
    return Leadership(url=settings.zk_url, replica=f"{socket.gethostname()}:"
                                                   f"{settings.listen_port}",
                      advertise_url=settings.advertise_url or
                      f"http://{host}:{settings.listen_port}",
                      session_timeout=settings.zk_session_timeout, auth=settings.zk_auth,
                      stop_grace=marathon.write_stop_seconds(settings.marathon_timeout)
                      + RECORD_MARGIN)


@dataclass(frozen=True)
class View:
    """Who leads, as this replica sees it (``/api/v1/status``, ``/readyz``)."""

    role: Role
    replica: str
    term: int | None
    leader: str | None
    """The leader's replica name and address, when known."""
    leader_url: str | None
    problem: str | None
    """Why this replica cannot take part now (ZooKeeper unreachable, ...)."""

    def as_json(self) -> dict[str, Any]:
        return {"role": str(self.role), "replica": self.replica, "term": self.term,
                "leader": self.leader, "leaderUrl": self.leader_url, "problem": self.problem}


class Leadership:
    """Contends for leadership on a thread; :meth:`fence` says whether writes may go out."""

    def __init__(
        self, *, url: str, replica: str, advertise_url: str, session_timeout: float,
        auth: str | None = None, clock: Callable[[], float] = time.time,
        stop_grace: float = 0.0,
    ) -> None:
        self.target = config_values.parse_zk_url(url)
        self.replica = replica
        self._advertise_url = advertise_url
        self._on_elected: Callable[[int], None] = lambda term: None
        self._stop_grace = stop_grace
        self._clock = clock
        auth_data = [("digest", auth)] if auth else None
        acl = None
        if auth:
            user, _, password = auth.partition(":")
            acl = [make_digest_acl(user, password, all=True)]
        self._zk = KazooClient(hosts=self.target.hosts, timeout=session_timeout,
                               auth_data=auth_data, default_acl=acl,
                               connection_retry={"max_tries": -1, "max_delay": 2.0})
        self._zk.add_listener(self._on_state)
        self._guard = threading.Lock()
        self._connected = False
        self._term: int | None = None
        self._lost = threading.Event()
        self._stopping = threading.Event()
        self._problem: str | None = "connecting to ZooKeeper"
        self._lock: Any = None
        self._thread = threading.Thread(target=self._contend, name="leadership", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, *, on_elected: Callable[[int], None]) -> None:
        """Connect in the background and contend; never blocks on ZooKeeper. ``on_elected``
        is called with the term each time this replica wins."""
        self._on_elected = on_elected
        self._zk.start_async()
        self._thread.start()

    def stop(self) -> None:
        """Give leadership up: the fence shuts, and once a write in flight has had time to
        end, the lock node goes (a follower takes over without waiting a session out)."""
        self._stopping.set()
        with self._guard:
            led, self._term = self._term is not None, None
            lock = self._lock
        if led:
            # The fence is shut; a write that passed it just before may still be on the wire.
            time.sleep(self._stop_grace)
        if lock is not None:
            lock.cancel()
            if self._zk.connected:
                with contextlib.suppress(kazoo_errors.KazooException):
                    lock.release()
        self._thread.join(timeout=5)
        self._zk.stop()
        self._zk.close()

    # -- what the rest of the controller asks ------------------------------------------------

    @property
    def leading(self) -> bool:
        with self._guard:
            return self._term is not None and self._connected and not self._lost.is_set()

    def fence(self) -> dict[str, str]:
        """Headers for a write to Marathon, or :class:`marathon.Fenced` when this replica may
        not write now."""
        with self._guard:
            term, connected, lost = self._term, self._connected, self._lost.is_set()
        if term is None or lost:
            raise marathon.Fenced(f"not the leader ({self._leader_text()})")
        if not connected:
            raise marathon.Fenced(f"leadership in doubt: {self._problem or 'ZooKeeper lost'}")
        return {REPLICA_HEADER: self.replica, TERM_HEADER: str(term)}

    def view(self) -> View:
        with self._guard:
            term, connected, problem = self._term, self._connected, self._problem
        leader = self._leader() if connected else None
        if term is not None and not connected:
            role = Role.SUSPENDED
        elif term is not None and not self._lost.is_set():
            role = Role.LEADER
        else:
            role = Role.FOLLOWER
        return View(role=role, replica=self.replica, term=term if role is Role.LEADER else None,
                    leader=(leader or {}).get("replica"), leader_url=(leader or {}).get("url"),
                    problem=problem)

    # -- ZooKeeper's side ----------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        # kazoo's connection thread: set flags only, never block here.
        with self._guard:
            if state == KazooState.CONNECTED:
                self._connected, self._problem = True, None
            elif state == KazooState.SUSPENDED:
                self._connected = False
                self._problem = "ZooKeeper connection lost: not writing to Marathon until it " \
                                "is back" + (" (still holding the lock for its session)"
                                             if self._term is not None else "")
            else:  # LOST: the session expired, its lock node is gone
                self._connected = False
                self._problem = "ZooKeeper session expired: leadership given up, contending " \
                                "again once connected"
                self._lost.set()
        telemetry.event(log, "zookeeper", state=str(state), replica=self.replica)

    def _contend(self) -> None:
        identifier = json.dumps({"replica": self.replica, "url": self._advertise_url})
        while not self._stopping.is_set():
            if not self._zk.connected:
                self._stopping.wait(0.2)
                continue
            self._lost.clear()
            lock = self._zk.Lock(f"{self.target.path}/leader", identifier=identifier)
            with self._guard:
                self._lock = lock
            try:
                if not lock.acquire():
                    continue
                term = self._bump_term(lock)
                if self._lost.is_set():
                    raise kazoo_errors.KazooException("the session expired while contending")
            except (kazoo_errors.KazooException, kazoo_errors.CancelledError) as e:
                log.info("contending for leadership failed, trying again: %s", e)
                # Our node, if it is still there, would stand before our next try.
                with contextlib.suppress(kazoo_errors.KazooException):
                    lock.release()
                self._stopping.wait(0.5)
                continue
            with self._guard:
                self._term = term
            telemetry.LEADER.set(1)
            telemetry.LEADER_TERM.set(term)
            telemetry.event(log, "elected leader", replica=self.replica, term=term)
            self._on_elected(term)
            while not (self._stopping.is_set() or self._lost.is_set()):
                self._stopping.wait(0.2)
            with self._guard:
                self._term = None
            telemetry.LEADER.set(0)
            # A lost session took the lock node with it; stop() releases it otherwise.
            telemetry.event(log, "leadership ended", replica=self.replica, term=term,
                            why="stopping" if self._stopping.is_set() else "session lost")

    def _bump_term(self, lock: Any) -> int:
        """The next term, written only while our lock node still exists."""
        term_path = f"{self.target.path}/term"
        self._zk.ensure_path(term_path)
        transaction = self._zk.transaction()
        transaction.check(f"{lock.path}/{lock.node}", 0)
        transaction.set_data(term_path, json.dumps(
            {"replica": self.replica, "url": self._advertise_url, "at": self._clock()}
        ).encode())
        results = transaction.commit()
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise kazoo_errors.KazooException(f"lost the lock while taking the term: {failed}")
        return int(results[1].version)

    def _leader(self) -> dict[str, str] | None:
        try:
            contenders = self._zk.Lock(f"{self.target.path}/leader").contenders()
        except kazoo_errors.KazooException:
            return None
        if not contenders:
            return None
        try:
            found = json.loads(contenders[0])
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def _leader_text(self) -> str:
        leader = self._leader()
        if leader is None:
            return "no leader known"
        return f"{leader.get('replica')} leads at {leader.get('url')}"
