"""Signed revisions, with real ``gpg`` keys made here: with a trusted set on the host, only
commits signed by one of its keys are applied; unsigned and wrongly signed ones are refused
with a clear record (who signed, which key, why), shown in status, notified, and the cluster
stays as the last good revision left it. Bump commits signed with the controller's own key
pass the same verification."""

from __future__ import annotations

import subprocess
import urllib.error
from pathlib import Path
from typing import Any

import git
import pytest

from reconciler.core import model
from reconciler.shell import bumper, gitsource, signatures
from testbed.gitrepos import Upstream
from tests.controller import stack
from tests.guard import keys
from tests.support import webhooks
from tests.sync import cluster

pytestmark = pytest.mark.integration


def _failed_runs(controller: stack.Controller) -> list[dict[str, Any]]:
    return [e for e in controller.get("/api/v1/history")["history"]
            if e["kind"] == "run" and e["outcome"] == "failed"]


def test_only_commits_signed_by_a_trusted_key_are_applied(
        tmp_path: Path, receiver: webhooks.Receiver) -> None:
    with keys.made(tmp_path / "keys", "Alice Release <alice@example.org>",
                   "Mallory <mallory@example.org>") as (alice, mallory):
        (tmp_path / "host").mkdir()
        trusted = alice.export(tmp_path / "host" / "trusted-keys.asc")
        env = {"RECONCILER_TRUSTED_KEYS_FILE": str(trusted),
               "RECONCILER_NOTIFY_WEBHOOK_URL": receiver.url}
        with stack.running(tmp_path / "stack", poll_interval=0.3, extra_env=env) as c:
            # The repo's first commit is not signed: refused, nothing created.
            first = str(git.Repo(c.upstream.work).head.commit.hexsha)
            status = c.wait("the unsigned first commit refused",
                            lambda: (s := c.get("/api/v1/status"))["invalid"] and s)
            assert status["invalid"].startswith(f"refused: commit {first[:12]}")
            assert "it is not signed" in status["invalid"]
            assert "Alice Release <alice@example.org>" in status["invalid"]  # the author
            assert status["revision"] is None
            assert not [a for a in c.live() if a.startswith("/dirac")]

            good = keys.signed_commit(c.upstream, stack.repo_files(tag="v8r2p44"),
                                      message="DIRAC services, signed", key=alice)
            c.wait("Alice's signed commit applied",
                   lambda: c.get("/api/v1/status")["revision"] == good
                   and c.settled(stack.CATALOG) and c.settled(stack.PORTAL))
            assert c.image_of(stack.CATALOG) == "lhcbdirac:v8r2p44"
            versions = {a: cluster.versions(c.marathon, a) for a in (stack.CATALOG, stack.PORTAL)}

            # Signed, but by a key the host does not trust.
            forged = keys.signed_commit(c.upstream, stack.repo_files(tag="v8r2p45"),
                                        message="Release v8r2p45", key=mallory)
            status = c.wait("Mallory's commit refused",
                            lambda: forged[:12] in ((s := c.get("/api/v1/status"))["invalid"]
                                                    or "") and s)
            assert "not in the trusted set" in status["invalid"]
            assert mallory.fingerprint[-16:] in status["invalid"]  # the key that signed it
            assert status["revision"] == good  # the last good revision stays applied

            unsigned = keys.signed_commit(c.upstream, stack.repo_files(tag="v8r2p46"),
                                          message="Release v8r2p46", key=None)
            status = c.wait("the unsigned commit refused",
                            lambda: unsigned[:12] in ((s := c.get("/api/v1/status"))["invalid"]
                                                      or "") and s)
            assert "it is not signed" in status["invalid"]

            # A clear record of each refusal, once each (polls do not repeat it).
            errors = [r["error"] for r in _failed_runs(c)]
            assert [e.split(" is not signed")[0] for e in errors] == [
                f"refused: commit {sha[:12]} (author Alice Release <alice@example.org>)"
                for sha in (first, forged, unsigned)], errors
            # The cluster is as Alice's commit left it: no new Marathon version, same image.
            assert {a: cluster.versions(c.marathon, a) for a in versions} == versions
            assert c.image_of(stack.CATALOG) == "lhcbdirac:v8r2p44"
            assert c.image_of(stack.PORTAL) == "lhcbdirac:v8r2p44"
            with pytest.raises(urllib.error.HTTPError) as not_ready:
                c.get("/readyz")
            assert not_ready.value.code == 503  # the newest commit cannot go out: look at it
            # On-call is told, once per refused commit.
            c.wait("a notification of each refusal", lambda: all(
                any(sha[:12] in t and "not signed by a trusted key" in t
                    for t in receiver.texts()) for sha in (forged, unsigned)))


def test_bump_commits_signed_with_the_controllers_key_pass_verification(
        tmp_path: Path) -> None:
    with keys.made(tmp_path / "keys", "reconciler bot <reconciler@localhost>",
                   "Someone Else <else@example.org>") as (bot, other):
        upstream = Upstream.create(tmp_path / "git", {
            "images.yaml": "images:\n  dirac:\n    repository: lhcbdirac\n    tag: v8r2p44\n"},
            message="images")
        signing = signatures.SigningKey(key_file=bot.export(tmp_path / "bot-secret.asc",
                                                            secret=True))
        try:
            copy = bumper.WorkingCopy(upstream.url, branch="main",
                                      directory=tmp_path / "bumper", signing_key=signing)
            pushed = bumper.bump(copy, images_path="images.yaml", change=bumper.Bump(
                image="dirac", old_tag="v8r2p44", new_tag="v8r2p45", digest="sha256:" + "a" * 64,
                pin=False, push=model.PushMode.DIRECT))
        finally:
            signing.close()
        assert signing.fingerprint == bot.fingerprint

        def source(trusting: keys.Key, name: str) -> gitsource.GitSource:
            keyring = signatures.Keyring(
                home=tmp_path / name / "trusted",
                trusted_keys_file=trusting.export(tmp_path / f"{name}.asc"),
                allowed_signers_file=None)
            return gitsource.GitSource(upstream.url, ref="main", cache_dir=tmp_path / name,
                                       keyring=keyring)

        trusting_bot = source(bot, "trusts-bot")
        assert trusting_bot.check() == pushed.commit
        snapshot = trusting_bot.read(pushed.commit)
        assert "tag: v8r2p45" in {f.path: f.text for f in snapshot.files}["images.yaml"]
        assert snapshot.author == "reconciler <reconciler@localhost>"

        trusting_other = source(other, "trusts-other")
        with pytest.raises(gitsource.UntrustedRevision) as refused:
            trusting_other.read(trusting_other.check())
        assert refused.value.verdict.status == "E"
        assert bot.fingerprint[-16:] in refused.value.reason


def test_a_key_taken_out_of_the_trusted_file_is_no_longer_trusted(tmp_path: Path) -> None:
    with keys.made(tmp_path / "keys", "Alice Release <alice@example.org>",
                   "Bob Ops <bob@example.org>") as (alice, bob):
        upstream = Upstream.create(tmp_path / "git", {"images.yaml": "images: {}\n"},
                                   message="first")
        sha = keys.signed_commit(upstream, {"reconciler.yaml": "prune: false\n"},
                                 message="signed by Alice", key=alice)
        trusted = tmp_path / "trusted.asc"
        trusted.write_bytes(alice.export(tmp_path / "a.asc").read_bytes()
                            + bob.export(tmp_path / "b.asc").read_bytes())
        keyring = signatures.Keyring(home=tmp_path / "home", trusted_keys_file=trusted,
                                     allowed_signers_file=None)
        trusting_both = gitsource.GitSource(upstream.url, ref="main",
                                            cache_dir=tmp_path / "c1", keyring=keyring)
        assert trusting_both.read(trusting_both.check()).revision == sha
        # Alice leaves the team: the operator rewrites the host file with Bob's key only.
        trusted.write_bytes(bob.export(tmp_path / "b.asc").read_bytes())
        with pytest.raises(gitsource.UntrustedRevision):
            trusting_both.read(trusting_both.check())  # the same source: no stale verdict


def test_ssh_signed_commits_are_checked_against_the_allowed_signers_file(
        tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "git", {"images.yaml": "images: {}\n"},
                               message="first")
    made = {}
    for name in ("carol", "dave"):
        key = tmp_path / f"{name}_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(key)], check=True, timeout=30)
        made[name] = key
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"carol@example.org {made['carol'].with_suffix('.pub').read_text()}")

    def ssh_signed(name: str, text: str) -> str:
        (upstream.work / "reconciler.yaml").write_text(text)
        repo = git.Repo(upstream.work)
        repo.git.add(all=True)
        repo.git.execute(["git", "-c", "gpg.format=ssh", "-c",
                          f"user.signingkey={made[name]}", "commit", "-S", "-m", f"by {name}"])
        repo.git.push("origin", "HEAD:refs/heads/main")
        return str(repo.head.commit.hexsha)

    keyring = signatures.Keyring(home=tmp_path / "home", trusted_keys_file=None,
                                 allowed_signers_file=allowed)
    source = gitsource.GitSource(upstream.url, ref="main", cache_dir=tmp_path / "clone",
                                 keyring=keyring)
    good = ssh_signed("carol", "prune: false\n")
    assert source.read(source.check()).revision == good
    ssh_signed("dave", "prune: true\n")
    with pytest.raises(gitsource.UntrustedRevision) as refused:
        source.read(source.check())
    assert refused.value.verdict.status != "G"
    assert "refused: commit" in refused.value.reason
