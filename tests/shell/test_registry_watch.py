"""The registry watcher end to end: a real Distribution registry, a real bare Git repository
and its clone. A tag pushed to the registry becomes one commit (or one proposal branch)
changing only the image's tag line; pre-releases follow the policy; a registry that is down
or refuses access is an outcome with a reason, never a crash."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from reconciler.shell import bumper, registry, registry_watch
from reconciler.shell.ports import free_port
from testbed import registries
from testbed.gitrepos import Upstream

pytestmark = pytest.mark.integration

IMAGES = """\
# Every image the apps use, named once.
# Release managers: lhcbdirac follows the registry; nginx moves by hand.
images:
  lhcbdirac:
    repository: {repository}
    tag: {tag}    # bumped by the registry watcher
    update:
      registry: {registry}
      repository: {repository}
      order: lhcbdirac
{options}
  nginx:
    repository: nginx
    tag: "1.25"   # pinned by hand
"""

APP = """\
instances: 1
container:
  docker:
    image: lhcbdirac
"""


@pytest.fixture(scope="module")
def anonymous() -> Iterator[registries.Registry]:
    with registries.running_registry() as server:
        yield server


@pytest.fixture(scope="module")
def basic() -> Iterator[registries.Registry]:
    with registries.running_registry(auth="htpasswd") as server:
        yield server


def images_yaml(*, registry_url: str, repository: str, tag: str = "v8r2p44",
                options: str = "") -> str:
    return IMAGES.format(registry=registry_url, repository=repository, tag=tag,
                         options=options)


def config_repo(root: Path, images: str) -> tuple[Upstream, bumper.WorkingCopy]:
    upstream = Upstream.create(root, {"desired-state/images.yaml": images,
                                      "desired-state/dirac-cert/web/portal.yaml": APP})
    copy = bumper.WorkingCopy(upstream.url, branch="main", directory=root / "bumper")
    return upstream, copy


def history(upstream: Upstream, branch: str = "main") -> list[git.Commit]:
    return list(git.Repo(upstream.bare).iter_commits(branch))


def changed_lines(upstream: Upstream, branch: str = "main") -> list[str]:
    repo = git.Repo(upstream.bare)
    diff = repo.git.diff(f"{branch}~1", branch, "--unified=0")
    return [line for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def fresh_repository() -> str:
    return f"lhcb/lhcbdirac-{uuid.uuid4().hex[:8]}"


def test_a_new_tag_becomes_one_commit_changing_only_the_tag_line(
        anonymous: registries.Registry, tmp_path: Path) -> None:
    repository = fresh_repository()
    for tag in ("v8r2p44", "v8r2p45", "v8r3-pre1", "latest"):
        anonymous.push(repository, tag)
    upstream, copy = config_repo(tmp_path, images_yaml(registry_url=anonymous.url,
                                                       repository=repository))
    # Nothing newer than v8r2p45 qualifies yet: one bump to it, then the release arrives.
    first = registry_watch.check_once(copy, repo_path="desired-state")
    assert [(o.action, o.newest) for o in first] == [(registry_watch.Action.BUMPED,
                                                      "v8r2p45")]
    digest = anonymous.push(repository, "v8r2p46")
    before = len(history(upstream))

    (outcome,) = registry_watch.check_once(copy, repo_path="desired-state")

    assert outcome.action == registry_watch.Action.BUMPED
    assert (outcome.current, outcome.newest, outcome.digest) == ("v8r2p45", "v8r2p46", digest)
    commits = history(upstream)
    assert len(commits) == before + 1
    head = commits[0]
    assert head.hexsha == outcome.commit and outcome.branch == "main"
    assert (head.author.name, head.committer.name) == ("reconciler", "reconciler")
    assert head.message.startswith("images.yaml: lhcbdirac v8r2p45 -> v8r2p46\n")
    assert digest in head.message
    assert changed_lines(upstream) == [
        "-    tag: v8r2p45    # bumped by the registry watcher",
        "+    tag: v8r2p46    # bumped by the registry watcher"]
    assert list(head.stats.files) == ["desired-state/images.yaml"]
    text = git.Repo(upstream.bare).git.show("main:desired-state/images.yaml")
    assert text == images_yaml(registry_url=anonymous.url, repository=repository,
                               tag="v8r2p46").rstrip("\n")

    (again,) = registry_watch.check_once(copy, repo_path="desired-state")
    assert again.action == registry_watch.Action.UP_TO_DATE
    assert len(history(upstream)) == before + 1


def test_pre_releases_are_ignored_unless_the_policy_takes_them(
        anonymous: registries.Registry, tmp_path: Path) -> None:
    repository = fresh_repository()
    for tag in ("v8r2p46", "v8r3-pre1"):
        anonymous.push(repository, tag)
    upstream, copy = config_repo(tmp_path, images_yaml(
        registry_url=anonymous.url, repository=repository, tag="v8r2p46"))

    (ignored,) = registry_watch.check_once(copy, repo_path="desired-state")
    assert (ignored.action, ignored.newest) == (registry_watch.Action.UP_TO_DATE, "v8r2p46")
    _, catalog = registry_watch.read_catalog(copy, repo_path="desired-state")
    (report,) = registry_watch.survey(catalog, clients=registry_watch.clients_for(
        catalog, credentials={}))
    assert [(s.tag, s.skip.value) for s in report.skipped] == [("v8r3-pre1", "pre-release")]

    upstream.commit({"desired-state/images.yaml": images_yaml(
        registry_url=anonymous.url, repository=repository, tag="v8r2p46",
        options="      prereleases: true")}, message="take pre-releases on cert")
    (taken,) = registry_watch.check_once(copy, repo_path="desired-state")
    assert (taken.action, taken.newest) == (registry_watch.Action.BUMPED, "v8r3-pre1")
    assert changed_lines(upstream) == [
        "-    tag: v8r2p46    # bumped by the registry watcher",
        "+    tag: v8r3-pre1    # bumped by the registry watcher"]


def test_branch_mode_proposes_once_and_pins_the_digest(
        anonymous: registries.Registry, tmp_path: Path) -> None:
    repository = fresh_repository()
    anonymous.push(repository, "v8r2p44")
    digest = anonymous.push(repository, "v8r2p46")
    upstream, copy = config_repo(tmp_path, images_yaml(
        registry_url=anonymous.url, repository=repository,
        options="      push: branch\n      pinDigest: true"))
    main_before = history(upstream)[0].hexsha

    (outcome,) = registry_watch.check_once(copy, repo_path="desired-state")

    branch = "reconciler/bump-lhcbdirac-v8r2p46"
    assert (outcome.action, outcome.branch) == (registry_watch.Action.PROPOSED, branch)
    assert history(upstream)[0].hexsha == main_before
    assert changed_lines(upstream, branch) == [
        "-    tag: v8r2p44    # bumped by the registry watcher",
        "+    tag: v8r2p46    # bumped by the registry watcher",
        f"+    digest: {digest}"]
    (again,) = registry_watch.check_once(copy, repo_path="desired-state")
    assert again.action == registry_watch.Action.ALREADY_PROPOSED
    assert len(history(upstream, branch)) == len(history(upstream)) + 1


def test_a_registry_that_is_down_is_a_failed_outcome_not_a_crash(tmp_path: Path) -> None:
    upstream, copy = config_repo(tmp_path, images_yaml(
        registry_url=f"http://127.0.0.1:{free_port()}", repository="lhcb/lhcbdirac"))
    before = len(history(upstream))
    (outcome,) = registry_watch.check_once(copy, repo_path="desired-state", timeout=2)
    assert outcome.action == registry_watch.Action.FAILED
    assert "unreachable" in outcome.reason
    assert len(history(upstream)) == before


@pytest.mark.timeout(60)
def test_a_pattern_that_backtracks_forever_is_a_failed_outcome_not_a_hang(
        anonymous: registries.Registry, tmp_path: Path) -> None:
    # images.yaml is untrusted: nested quantifiers against a tag that almost matches
    # backtrack exponentially (with Python's re this check never ended).
    repository = fresh_repository()
    for tag in ("v8r2p44", "v8r2p46", "a" * 60):
        anonymous.push(repository, tag)
    images = images_yaml(registry_url=anonymous.url, repository=repository,
                         options="      pattern: '(a|aa)+c|v8r2p\\d+'")
    upstream, copy = config_repo(tmp_path, images.replace("order: lhcbdirac", "order: regex"))
    before = len(history(upstream))

    (outcome,) = registry_watch.check_once(copy, repo_path="desired-state")

    assert outcome.action == registry_watch.Action.FAILED
    assert "took too long" in outcome.reason, outcome.reason
    assert len(history(upstream)) == before


def test_auth_refused_is_a_failed_outcome_and_credentials_from_the_host_work(
        basic: registries.Registry, tmp_path: Path) -> None:
    repository = fresh_repository()
    basic.push(repository, "v8r2p46")
    upstream, copy = config_repo(tmp_path, images_yaml(registry_url=basic.url,
                                                       repository=repository))
    (refused,) = registry_watch.check_once(copy, repo_path="desired-state")
    assert refused.action == registry_watch.Action.FAILED
    assert "wants credentials; none are configured" in refused.reason

    wrong = {f"127.0.0.1:{basic.port}": registry.Credentials(
        username=registries.USER, password="wrong-password")}
    (denied,) = registry_watch.check_once(copy, repo_path="desired-state", credentials=wrong)
    assert denied.action == registry_watch.Action.FAILED
    assert "access refused (401)" in denied.reason and "wrong-password" not in denied.reason

    right = {f"127.0.0.1:{basic.port}": registry.Credentials(
        username=registries.USER, password=registries.PASSWORD)}
    (bumped,) = registry_watch.check_once(copy, repo_path="desired-state", credentials=right)
    assert (bumped.action, bumped.newest) == (registry_watch.Action.BUMPED, "v8r2p46")


def test_an_unreachable_config_repo_raises_with_a_reason(tmp_path: Path) -> None:
    copy = bumper.WorkingCopy((tmp_path / "nowhere.git").as_uri(), branch="main",
                              directory=tmp_path / "bumper")
    with pytest.raises(bumper.BumpUnavailable, match="git fetch failed"):
        registry_watch.check_once(copy)


def test_a_broken_images_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    _, copy = config_repo(tmp_path, images_yaml(
        registry_url="http://127.0.0.1:1", repository="lhcb/lhcbdirac",
        options="      push: merge-request"))
    with pytest.raises(bumper.BumpRefused,
                       match="desired-state/images.yaml:11: /images/lhcbdirac/update/push"):
        registry_watch.check_once(copy, repo_path="desired-state")


def test_with_verification_on_and_no_signing_key_the_watch_pushes_nothing_and_says_why(
        anonymous: registries.Registry, tmp_path: Path) -> None:
    # The controller would refuse its own unsigned bump: the watch must not push it.
    from reconciler.shell import config, registry_job

    repository = fresh_repository()
    anonymous.push(repository, "v8r2p44")
    anonymous.push(repository, "v8r2p45")
    upstream, _ = config_repo(tmp_path / "git", images_yaml(registry_url=anonymous.url,
                                                            repository=repository))
    signers = tmp_path / "allowed_signers"
    signers.write_text("")
    settings = config.load({"RECONCILER_REPO_URL": upstream.url,
                            "RECONCILER_REPO_PATH": "desired-state",
                            "RECONCILER_STATE_DIR": str(tmp_path / "state"),
                            "RECONCILER_ALLOWED_SIGNERS_FILE": str(signers)})
    before = [c.hexsha for c in history(upstream)]
    job = registry_job.RegistryJob(settings)

    job.run()

    assert [c.hexsha for c in history(upstream)] == before
    assert job.error == bumper.UNSIGNED_REFUSED
    assert "RECONCILER_SIGNING_KEY_FILE is not set" in (job.error or "")
    # The promoter commits through the same working copy: refused the same way, before any
    # file is written.
    promotions = bumper.working_copy(settings, tmp_path / "promotions")
    with pytest.raises(bumper.BumpRefused, match="RECONCILER_SIGNING_KEY_FILE is not set"):
        promotions.commit_and_push(relative="desired-state/images.yaml", text="",
                                   message="promote", branch="main")
    assert [c.hexsha for c in history(upstream)] == before
