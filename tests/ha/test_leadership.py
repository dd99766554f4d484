"""Leader election and fencing on a real ZooKeeper, in process (shell/leadership.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from kazoo import exceptions as kazoo_errors
from kazoo.client import KazooClient

from reconciler.devcluster import launch, writers
from reconciler.shell import leadership, marathon
from testbed import zookeeper
from tests.support import polling
from tests.sync import cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def pair(zk: zookeeper.ZooKeeper) -> Iterator[list[leadership.Leadership]]:
    elected: list[tuple[str, int]] = []
    group = [leadership.Leadership(url=zk.url("/tests"), replica=name,
                                   advertise_url=f"http://{name}.example.org:8000",
                                   session_timeout=6.0) for name in ("a", "b")]
    for member in group:
        member.start(on_elected=lambda term, name=member.replica: elected.append((name, term)))
    try:
        yield group
    finally:
        for member in group:
            member.stop()


def test_check_timing_refuses_a_session_a_write_in_flight_could_outlive() -> None:
    with pytest.raises(leadership.UnsafeTiming, match="RECONCILER_ZK_SESSION_TIMEOUT") as e:
        leadership.check_timing(session_timeout=10, marathon_timeout=10)
    assert "RECONCILER_MARATHON_TIMEOUT" in str(e.value)
    leadership.check_timing(session_timeout=10, marathon_timeout=1.2)


def test_run_refuses_to_start_with_a_session_too_short_for_its_fence() -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler", "run"], capture_output=True,
                          text=True, timeout=60, env={
                              "PATH": "/usr/bin:/bin", "RECONCILER_ZK_URL": "zk://zk:2181/r",
                              "RECONCILER_ZK_SESSION_TIMEOUT": "10",
                              "RECONCILER_MARATHON_TIMEOUT": "10"})
    assert done.returncode == 1
    assert "RECONCILER_ZK_SESSION_TIMEOUT (10 s) is too short" in done.stderr


def test_one_of_two_replicas_leads_the_other_is_fenced_and_names_it(
        pair: list[leadership.Leadership]) -> None:
    polling.eventually("one leader", lambda: sum(m.leading for m in pair) == 1)
    (leader,) = [m for m in pair if m.leading]
    (follower,) = [m for m in pair if not m.leading]
    polling.eventually("the follower names the leader",
                       lambda: follower.view().leader == leader.replica)
    headers = leader.fence()
    assert headers[leadership.REPLICA_HEADER] == leader.replica
    assert int(headers[leadership.TERM_HEADER]) >= 1
    with pytest.raises(marathon.Fenced, match=f"{leader.replica} leads at "
                                              f"http://{leader.replica}.example.org:8000"):
        follower.fence()
    view = follower.view()
    assert (view.role, view.leader, view.problem) == (leadership.Role.FOLLOWER, leader.replica,
                                                      None)


def test_a_leader_that_steps_down_hands_over_with_a_higher_term(
        pair: list[leadership.Leadership]) -> None:
    polling.eventually("one leader", lambda: sum(m.leading for m in pair) == 1)
    (leader,) = [m for m in pair if m.leading]
    (follower,) = [m for m in pair if not m.leading]
    term = int(leader.fence()[leadership.TERM_HEADER])
    leader.stop()
    with pytest.raises(marathon.Fenced):
        leader.fence()
    polling.eventually("the follower leads", lambda: follower.leading)
    assert int(follower.fence()[leadership.TERM_HEADER]) == term + 1


def test_zookeeper_gone_the_leader_is_fenced_at_once_and_says_why(
        pair: list[leadership.Leadership], zk: zookeeper.ZooKeeper) -> None:
    polling.eventually("one leader", lambda: sum(m.leading for m in pair) == 1)
    (leader,) = [m for m in pair if m.leading]
    zk.stop()
    polling.eventually("the leader suspended",
                       lambda: leader.view().role is leadership.Role.SUSPENDED)
    with pytest.raises(marathon.Fenced, match="leadership in doubt: ZooKeeper connection lost"):
        leader.fence()
    zk.start()
    polling.eventually("one leader again", lambda: sum(m.leading for m in pair) == 1, timeout=60)


def test_a_fenced_client_sends_no_write_and_the_leaders_writes_say_who_and_which_term(
        pair: list[leadership.Leadership], devcluster: launch.RunningCluster) -> None:
    polling.eventually("one leader", lambda: sum(m.leading for m in pair) == 1)
    (leader,) = [m for m in pair if m.leading]
    (follower,) = [m for m in pair if not m.leading]
    settings = marathon.ClientSettings(urls=(devcluster.url,))
    fenced = marathon.MarathonClient(settings, fence=follower.fence)
    leading = marathon.MarathonClient(settings, fence=leader.fence)
    app = cluster.fast_app("/dirac/ha/fenced")
    with pytest.raises(marathon.Fenced):
        fenced.create_app(app)
    assert fenced.list_apps() == []  # reads are never fenced
    leading.create_app(app)
    (write,) = writers.read(devcluster.state_dir)
    assert (write["method"], write["path"], write["replica"], write["term"]) == (
        "POST", "/v2/apps", leader.replica, leader.fence()[leadership.TERM_HEADER])


def test_with_digest_credentials_the_election_nodes_are_closed_to_anyone_else(
        zk: zookeeper.ZooKeeper) -> None:
    member = leadership.Leadership(url=zk.url("/secured"), replica="a",
                                   advertise_url="http://a.example.org:8000",
                                   session_timeout=6.0, auth="reconciler:zk-s3cret")
    member.start(on_elected=lambda term: None)
    stranger = KazooClient(hosts=zk.hosts)
    try:
        polling.eventually("the member leads", lambda: member.leading)
        stranger.start(timeout=10)
        with pytest.raises(kazoo_errors.NoAuthError):
            stranger.get("/secured/term")
        with pytest.raises(kazoo_errors.NoAuthError):
            stranger.delete("/secured/leader", recursive=True)
        assert member.leading
    finally:
        stranger.stop()
        stranger.close()
        member.stop()
