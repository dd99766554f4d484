"""Benchmark: how long after a ``kill -9`` of the leader the other replica leads.

    python bench/failover.py [--kills 5] [--session-timeout 9] [--marathon-timeout 1]

Everything is real and local: a throwaway ZooKeeper (Debian's package) and PostgreSQL, the
dev cluster, a bare Git repository with one app, and two ``reconciler run`` replicas sharing
the records and the election. Each round waits until one replica leads and the other knows
it, SIGKILLs the leader's process group, and polls the survivor's ``/api/v1/status`` every
50 ms until it says it leads; then it starts the killed replica again, so every round begins
with two replicas.

Start: ``kill`` returned. End: the survivor's status first says ``leader``. Included: the
ZooKeeper session timeout (the dead leader's lock node lives until its session expires:
the bulk of it, by design, see docs/ha.md), ZooKeeper noticing the expiry (a few ticks of
500 ms), the watch that wakes the survivor, taking the lock and bumping the term, and up to
50 ms of polling. Not included: the new leader's first reconcile (a Git poll, resuming the
deployments its predecessor was waiting on). Prints each takeover, then median and spread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from reconciler.devcluster import launch  # noqa: E402
from testbed import apps, gitrepos, postgres, replicas, zookeeper  # noqa: E402

APP = "/bench/failover/web"


def repo_files() -> dict[str, str]:
    return {APP.strip("/") + ".yaml": yaml.safe_dump(apps.fast_app(APP, grace=1)),
            "images.yaml": yaml.safe_dump(
                {"images": {"dirac": {"repository": "lhcbdirac", "tag": "v8r2p44"}}})}


def wait_until(what: str, check: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def knows_leader(replica: replicas.Replica, leader: replicas.Replica) -> bool:
    status = replica.status() or {}
    return (status.get("leadership") or {}).get("leaderUrl") == leader.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--session-timeout", type=float, default=9.0)
    parser.add_argument("--marathon-timeout", type=float, default=1.0)
    args = parser.parse_args()
    takeovers: list[float] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-failover-") as tmp, \
            postgres.running_postgres() as pg, pg.database() as database, \
            zookeeper.running_zookeeper() as zk:
        root = Path(tmp)
        dev = launch.launch(state_dir=root / "devcluster")
        group: list[replicas.Replica] = []
        try:
            upstream = gitrepos.Upstream.create(root / "git", repo_files(), message="start")
            env = replicas.base_env(marathon=dev.url, repo=upstream.url, database=database,
                                    zookeeper=zk.url(), session_timeout=args.session_timeout,
                                    marathon_timeout=args.marathon_timeout)
            group = [replicas.start(name, env, root) for name in ("a", "b")]
            for kill in range(1, args.kills + 1):
                leader = replicas.wait_for_leader(group, timeout=120)
                if leader is None:
                    raise SystemExit("no replica leads")
                (survivor,) = [r for r in group if r is not leader]
                wait_until("the follower to know the leader",
                           lambda s=survivor, le=leader: knows_leader(s, le))
                leader.kill()
                killed_at = time.monotonic()
                wait_until("the survivor to lead", lambda s=survivor: s.role() == "leader")
                takeovers.append(time.monotonic() - killed_at)
                print(f"kill {kill}: {leader.name} killed, {survivor.name} led after "
                      f"{takeovers[-1]:.2f} s", flush=True)
                group[group.index(leader)] = replicas.start(leader.name, env, root)
        finally:
            for replica in group:
                replica.stop()
            dev.stop()
    median = statistics.median(takeovers)
    print(f"takeover after kill -9 of the leader, {len(takeovers)} kills, ZooKeeper session "
          f"timeout {args.session_timeout:g} s: median {median:.2f} s, min "
          f"{min(takeovers):.2f} s, max {max(takeovers):.2f} s")


if __name__ == "__main__":
    main()
