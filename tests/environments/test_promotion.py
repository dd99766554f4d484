"""Promotion from certification to production on a real config repo and a real dev cluster,
with the controller of each environment running in this process and an injected clock for
the soak (no waiting an hour, no timed assertion)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import git
import pytest
import yaml

from reconciler.core import promotion
from reconciler.devcluster import launch
from reconciler.shell import environments
from testbed.gitrepos import Upstream
from tests.environments import stack
from tests.support import polling

HOUR = stack.HOUR


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream.create(tmp_path / "git", stack.repo_files(cert_tag="v8r2p44",
                                                              prod_tag="v8r2p44"),
                           message="DIRAC certification and production")


@pytest.fixture
def running(tmp_path: Path, devcluster: launch.RunningCluster, upstream: Upstream
            ) -> Iterator[tuple[environments.Fleet, stack.Clock]]:
    clock = stack.Clock()
    fleet = stack.fleet_for(tmp_path, devcluster, upstream, clock=clock)
    fleet.start()
    try:
        yield fleet, clock
    finally:
        fleet.stop()
        fleet.close()


def release_in_cert(devcluster: launch.RunningCluster, upstream: Upstream, tag: str) -> str:
    """Commit ``tag`` to certification's images.yaml and wait until every cert app runs it."""
    commit = upstream.commit({"cert/images.yaml": stack.images(tag)},
                             message=f"certification: lhcbdirac {tag}")
    for app_id in stack.CERT_APPS:
        polling.eventually(f"{app_id} healthy on {tag}",
                           lambda a=app_id: stack.running_tag(devcluster.url, a) == tag)
    return commit


def head(upstream: Upstream) -> git.Commit:
    return git.Repo(upstream.bare).commit("main")


def test_promotion_is_refused_before_the_soak_and_accepted_after_with_both_releases_linked(
    devcluster: launch.RunningCluster, upstream: Upstream,
    running: tuple[environments.Fleet, stack.Clock],
) -> None:
    fleet, clock = running
    for app_id in stack.PROD_APPS:
        polling.eventually(f"{app_id} on v8r2p44",
                           lambda a=app_id: stack.running_tag(devcluster.url, a) == "v8r2p44")
    cert_release = release_in_cert(devcluster, upstream, "v8r2p45")
    before = head(upstream).hexsha

    refused = fleet.promoter.promote("dirac", target="prod", requested_by="alice@ops")
    assert not refused.promoted
    assert refused.assessment.verdict.decision is promotion.Decision.WAIT
    for app_id in stack.CERT_APPS:  # which app, healthy since when
        assert f"{app_id}: healthy since 20" in refused.message
    assert "of 1h" in refused.message
    assert head(upstream).hexsha == before, "a refused promotion wrote a commit"
    prod_store = fleet.members["prod"].controller.records
    assert prod_store.promotions() == []
    assert prod_store.audit_log(limit=1)[0].action == "promote"

    clock.ahead = HOUR + 5
    accepted = fleet.promoter.promote("dirac", target="prod", requested_by="alice@ops")
    assert accepted.promoted, accepted.message
    commit = head(upstream)
    assert accepted.promotion is not None and accepted.promotion.commit == commit.hexsha
    assert commit.message.startswith("prod/images.yaml: dirac v8r2p44 -> v8r2p45 "
                                     "(promoted from cert)")
    prod_images = (commit.tree / "prod" / "images.yaml").data_stream.read().decode()
    assert prod_images == stack.images("v8r2p45"), "the edit did not keep the file's layout"
    assert (commit.tree / "cert" / "images.yaml").data_stream.read().decode() == \
        stack.images("v8r2p45")

    # Production rolls out the promoted tag; the promotion is linked to that release.
    for app_id in stack.PROD_APPS:
        polling.eventually(f"{app_id} on v8r2p45",
                           lambda a=app_id: stack.running_tag(devcluster.url, a) == "v8r2p45")
    linked = polling.eventually("the promotion linked to production's release", lambda: next(
        (p for p in prod_store.promotions() if p.target_revision), None))
    assert linked.source_revision == cert_release
    assert linked.target_revision == commit.hexsha
    assert (linked.image, linked.previous_tag, linked.tag) == ("dirac", "v8r2p44", "v8r2p45")
    assert linked.requested_by == "alice@ops" and not linked.automatic
    assert {e["app"] for e in linked.evidence} == set(stack.CERT_APPS)
    cert_side = fleet.members["cert"].controller.records.release(cert_release)
    assert cert_side is not None and [str(c) for c in cert_side.images_changed] == [
        "dirac (lhcbdirac): v8r2p44 -> v8r2p45"]
    prod_side = prod_store.release(commit.hexsha)
    assert prod_side is not None and [str(c) for c in prod_side.images_changed] == [
        "dirac (lhcbdirac): v8r2p44 -> v8r2p45"]

    again = fleet.promoter.promote("dirac", target="prod", requested_by="alice@ops")
    assert again.assessment.verdict.decision is promotion.Decision.NOTHING


def test_a_tag_not_healthy_in_certification_is_refused_whatever_the_soak(
    devcluster: launch.RunningCluster, upstream: Upstream,
    running: tuple[environments.Fleet, stack.Clock],
) -> None:
    fleet, clock = running
    release_in_cert(devcluster, upstream, "v8r2p45")
    # -broken tags never turn healthy on the dev cluster: the controller rolls them back.
    upstream.commit({"cert/images.yaml": stack.images("v8r2p46-broken")},
                    message="certification: a broken release")
    clock.ahead = 30 * 24 * HOUR
    verdict = polling.eventually("the gate sees the broken tag", lambda: (
        v if (v := fleet.promoter.assess("dirac", target="prod").verdict).tag
        == "v8r2p46-broken" else None))
    assert verdict.decision is promotion.Decision.REFUSE
    assert {b.app_id for b in verdict.blockers} == set(stack.CERT_APPS)
    with pytest.raises(Exception, match="takes promotions from cert only"):
        fleet.promoter.promote("dirac", target="prod", source="prod", requested_by="bob")


def test_automatic_promotion_waits_for_the_soak_then_promotes_once(
    tmp_path: Path, devcluster: launch.RunningCluster, upstream: Upstream,
) -> None:
    clock = stack.Clock()
    fleet = stack.fleet_for(tmp_path, devcluster, upstream, prod={"auto_promote": ["dirac"]},
                            clock=clock)
    fleet.start()
    try:
        cert_release = release_in_cert(devcluster, upstream, "v8r2p45")
        assert fleet.promoter.promote_soaked() == [], "promoted before the soak"
        prod_store = fleet.members["prod"].controller.records
        assert prod_store.promotions() == []

        clock.ahead = HOUR + 5  # the scheduler's auto-promote job finds the gate open
        promoted = polling.eventually("an automatic promotion", lambda: next(
            iter(prod_store.promotions()), None))
        assert promoted.automatic and promoted.tag == "v8r2p45"
        assert promoted.source_revision == cert_release
        for app_id in stack.PROD_APPS:
            polling.eventually(f"{app_id} on v8r2p45",
                               lambda a=app_id: stack.running_tag(devcluster.url, a) == "v8r2p45")
        assert "after the soak (auto_promote)" in head(upstream).message

        # A person takes production back: the policy does not push the same tag again.
        git.Repo(upstream.work).git.pull("--ff-only", "origin", "main")
        upstream.commit({"prod/images.yaml": stack.images("v8r2p44")},
                        message="production: back to v8r2p44 while we look")
        assert fleet.promoter.promote_soaked() == []
        assert len(prod_store.promotions()) == 1
        assert yaml.safe_load((head(upstream).tree / "prod" / "images.yaml")
                              .data_stream.read())["images"]["dirac"]["tag"] == "v8r2p44"
    finally:
        fleet.stop()
        fleet.close()
