"""The Git source on real repositories: branch, tag pattern, pinned commit, path, errors."""

from __future__ import annotations

import base64
import contextlib
import http.server
import threading
from pathlib import Path
from typing import ClassVar

import git
import pytest

from reconciler.core import parse
from reconciler.shell import gitsource
from testbed.gitrepos import Upstream, git_daemon

APP = "instances: 1\ncmd: sleep 1000\n"


def files_of(snapshot: gitsource.Snapshot) -> dict[str, str]:
    return {f.path: f.text for f in snapshot.files}


def test_branch_head_is_read_from_tree_objects_with_commit_facts(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path, {"config/dirac/web.yaml": APP, "config/README.md": "x",
                                          "other/app.yaml": APP}, message="Add the portal")
    source = gitsource.open_source(upstream.url, ref="main", path="config",
                                   cache_dir=tmp_path / "cache")
    revision = source.check()
    snapshot = source.read(revision)
    assert files_of(snapshot) == {"dirac/web.yaml": APP}
    assert snapshot.revision == revision and len(revision) == 40
    assert snapshot.author == "Alice Release <alice@example.org>"
    assert snapshot.message == "Add the portal"
    assert snapshot.committed_at and snapshot.committed_at > 1e9
    assert (tmp_path / "cache" / "HEAD").is_file()  # bare clone, no working tree


def test_a_new_commit_is_seen_and_fetched_incrementally(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path, {"a.yaml": APP})
    source = gitsource.open_source(upstream.url, ref="main", path=".",
                                   cache_dir=tmp_path / "cache")
    first = source.check()
    source.read(first)
    second_sha = upstream.commit({"b.yaml": APP, "a.yaml": None}, message="swap")
    assert source.check() == second_sha
    assert files_of(source.read(second_sha)) == {"b.yaml": APP}
    assert files_of(source.read(first)) == {"a.yaml": APP}  # old revisions stay readable


def test_tag_pattern_follows_the_newest_version(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path, {"a.yaml": "instances: 1\n"})
    upstream.tag("v1.9.0")
    upstream.commit({"a.yaml": "instances: 2\n"}, message="two")
    upstream.tag("v1.10.0", annotated=True)
    upstream.commit({"a.yaml": "instances: 3\n"}, message="three (not released)")
    upstream.tag("nightly")
    source = gitsource.open_source(upstream.url, ref="v*", path=".",
                                   cache_dir=tmp_path / "cache")
    assert files_of(source.read(source.check())) == {"a.yaml": "instances: 2\n"}


def test_a_pinned_commit_is_followed_forever(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path, {"a.yaml": "instances: 1\n"})
    pinned = upstream.commit({"a.yaml": "instances: 2\n"}, message="two")
    upstream.commit({"a.yaml": "instances: 3\n"}, message="three")
    source = gitsource.open_source(upstream.url, ref=pinned[:10], path=".",
                                   cache_dir=tmp_path / "cache")
    assert source.check() == pinned
    assert files_of(source.read(pinned)) == {"a.yaml": "instances: 2\n"}


def test_unknown_ref_and_missing_path_need_a_human(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path, {"a.yaml": APP})
    with pytest.raises(gitsource.BadSource, match="release-9"):
        gitsource.open_source(upstream.url, ref="release-9", path=".",
                              cache_dir=tmp_path / "c1").check()
    source = gitsource.open_source(upstream.url, ref="main", path="nowhere",
                                   cache_dir=tmp_path / "c2")
    with pytest.raises(gitsource.BadSource, match="nowhere"):
        source.read(source.check())


def test_unreachable_remote_is_temporary_and_never_shows_the_token(tmp_path: Path) -> None:
    source = gitsource.open_source("http://127.0.0.1:9/nothing.git", ref="main", path=".",
                                   cache_dir=tmp_path / "cache", token="tok-very-secret")
    with pytest.raises(gitsource.SourceUnavailable) as error:
        source.check()
    assert "tok-very-secret" not in str(error.value)
    assert "127.0.0.1:9" in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_the_token_is_never_written_to_the_clone(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path, {"a.yaml": APP})
    source = gitsource.open_source(upstream.url, ref="main", path=".",
                                   cache_dir=tmp_path / "cache", token="tok-very-secret")
    source.read(source.check())
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert b"tok-very-secret" not in path.read_bytes(), path


def test_plain_directory_and_local_repository_paths(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    (folder / "dirac").mkdir(parents=True)
    (folder / "dirac" / "web.yaml").write_text(APP)
    plain = gitsource.open_source(str(folder), ref="main", path=".", cache_dir=tmp_path / "c")
    revision = plain.check()
    assert revision.startswith("dir:")
    assert files_of(plain.read(revision)) == {"dirac/web.yaml": APP}
    upstream = Upstream.create(tmp_path / "u", {"a.yaml": APP})
    local = gitsource.open_source(str(upstream.work), ref="main", path=".",
                                  cache_dir=tmp_path / "c2")
    assert isinstance(local, gitsource.GitSource)
    assert files_of(local.read(local.check())) == {"a.yaml": APP}


@pytest.mark.integration
def test_over_git_daemon_an_unchanged_remote_costs_one_ls_remote(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path, {"a.yaml": APP})
    with git_daemon(tmp_path, tmp_path / "daemon.log") as daemon:
        source = gitsource.open_source(f"{daemon.url}/upstream.git", ref="main", path=".",
                                       cache_dir=tmp_path / "cache")
        revision = source.check()
        source.read(revision)
        before = daemon.upload_packs()
        assert source.check() == revision
        source.read(revision)  # already there: no fetch
        assert daemon.upload_packs() == before + 1
        newer = upstream.commit({"b.yaml": APP}, message="more")
        assert source.check() == newer
        assert set(files_of(source.read(newer))) == {"a.yaml", "b.yaml"}


class _RecordingGitServer(http.server.BaseHTTPRequestHandler):
    """A Git smart-HTTP endpoint that records what arrives and answers 404, looking at the
    command lines of every process while git waits for the answer."""

    seen: ClassVar[list[tuple[str, str | None, bool]]] = []
    token: ClassVar[str] = ""

    def do_GET(self) -> None:
        in_argv = False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                in_argv = in_argv or self.token.encode() in cmdline.read_bytes()
        self.seen.append((self.path, self.headers.get("Authorization"), in_argv))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_the_https_token_travels_as_a_header_and_never_on_a_command_line(
        tmp_path: Path) -> None:
    token = "glpat-tok-on-the-wire"
    _RecordingGitServer.seen = []
    _RecordingGitServer.token = base64.b64encode(f"reconciler:{token}".encode()).decode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingGitServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/lhcb/desired-state.git"
        source = gitsource.open_source(url, ref="main", path=".", cache_dir=tmp_path / "c",
                                       token=token)
        with pytest.raises(gitsource.SourceUnavailable) as error:
            source.check()
    finally:
        server.shutdown()
    assert token not in str(error.value)
    assert _RecordingGitServer.seen, "git never reached the server"
    path, authorization, in_argv = _RecordingGitServer.seen[0]
    assert path.startswith("/lhcb/desired-state.git/info/refs")
    assert authorization == f"Basic {_RecordingGitServer.token}"
    assert not in_argv, "the credential was readable in a process's command line"


def test_ssh_checks_host_keys_against_the_known_hosts_file_given(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not a real key\n")
    known = tmp_path / "known_hosts"
    known.write_text("")
    source = gitsource.open_source("ssh://git@127.0.0.1:9/lhcb/desired-state.git", ref="main",
                                   path=".", cache_dir=tmp_path / "c", ssh_key_file=key,
                                   known_hosts_file=known)
    with pytest.raises(gitsource.SourceUnavailable) as error:
        source.check()  # nothing listens on port 9: unreachable, retried later
    assert "127.0.0.1" in str(error.value)
    assert isinstance(source, gitsource.GitSource)
    command = source._environment()["GIT_SSH_COMMAND"]  # noqa: SLF001 - what ssh is given
    assert f"UserKnownHostsFile={known}" in command
    assert "StrictHostKeyChecking=yes" in command and f"-i {key}" in command


def test_symlinks_and_oversized_blobs_in_a_commit_are_refused_unread(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path, {"dirac/web.yaml": APP})
    (upstream.work / "dirac/shadow.yaml").symlink_to("/etc/shadow")
    (upstream.work / "dirac/outside.yaml").symlink_to("../../elsewhere/app.yaml")
    (upstream.work / "dirac/huge.json").write_text(" " * (parse.MAX_FILE_BYTES + 1))
    work = git.Repo(upstream.work)
    work.git.add(all=True)
    work.index.commit("links")
    work.git.push("origin", "HEAD:refs/heads/main")
    source = gitsource.open_source(upstream.url, ref="main", path=".",
                                   cache_dir=tmp_path / "cache")
    with pytest.raises(gitsource.BadSource) as caught:
        source.read(source.check())
    reasons = caught.value.reason.splitlines()
    assert reasons == [
        f"dirac/huge.json: file too large: {parse.MAX_FILE_BYTES + 1} bytes, the limit is "
        f"{parse.MAX_FILE_BYTES}",
        "dirac/outside.yaml: symbolic link not allowed: commit the file itself",
        "dirac/shadow.yaml: symbolic link not allowed: commit the file itself"]
