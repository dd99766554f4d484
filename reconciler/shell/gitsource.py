"""Where the desired state comes from: a Git repository (the only module importing ``git``),
or a plain directory with the same interface.

A Git source is cloned once, bare, into the state directory; later reads fetch only what is
new. Each poll costs one ``git ls-remote`` (no fetch, no checkout) when the remote did not
move. Files are read straight from the commit's tree objects: there is no working tree.

What is followed (``ref``):

- a branch (``main``): its head;
- a tag (``v8r2p44``) or a tag pattern (``v*``): the newest matching tag, ordered by
  :class:`packaging.version.Version` (tags that are no version come last, by name);
- a commit sha (7 to 40 hex digits): that commit, forever (no polling after the first read).

Credentials never reach the repository's config, a command line, a log line or an error
message: an HTTPS token is an ``http.extraHeader`` given to each git process through its
environment (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_0``/``GIT_CONFIG_VALUE_0``; a process's
arguments are readable by every user of the host, its environment is not), and an SSH key
goes through ``GIT_SSH_COMMAND``. SSH checks the server's host key against the known_hosts
file given (``StrictHostKeyChecking=yes``); without one it trusts a host on first use and
refuses a changed key (``accept-new``).

Exception tree::

    SourceError
    ├── SourceUnavailable   the remote cannot be reached or read: keep the last good
    │                       revision and retry with backoff
    └── BadSource           the ref matches nothing, the path is not in the commit: a
                            human must change the setting or the repo

Interface shared by :class:`GitSource` and :class:`DirectorySource`::

    revision = source.check()           # cheap: the revision desired is at now
    snapshot = source.read(revision)    # files (under the repo path) and commit facts
"""

from __future__ import annotations

import base64
import fnmatch
import re
import shlex
import shutil
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import git
import git.exc
import packaging.version

from reconciler.core import load as loading
from reconciler.core import model, parse, redact
from reconciler.shell import directory, signatures

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_COMMAND_TIMEOUT = 120.0
"""Seconds after which a git command is killed: a hanging remote counts as unreachable."""


class SourceError(Exception):
    """Base of the source errors; ``reason`` is safe to log and record (no credentials)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceUnavailable(SourceError):
    """Temporary: the remote did not answer or could not be read. Retry with backoff."""


class BadSource(SourceError):
    """Stalling: the ref or path names nothing. Needs a human."""


class UntrustedRevision(SourceError):
    """Stalling: verification is on and the commit is not signed by a trusted key
    (:mod:`signatures`); nothing of it may be applied until a new, signed commit comes."""

    def __init__(self, verdict: signatures.Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass(frozen=True)
class Snapshot:
    """One revision of the desired state, as files, with who made it and why."""

    revision: str
    files: tuple[model.SourceFile, ...]
    source: str
    """The repo URL (credentials removed) or directory."""
    ref: str
    author: str | None = None
    message: str | None = None
    committed_at: float | None = None
    """UNIX seconds."""


class Source(Protocol):
    """What the controller reads desired state from."""

    def check(self) -> str: ...

    def read(self, revision: str) -> Snapshot: ...


def open_source(
    url: str, *, ref: str, path: str, cache_dir: Path, token: str | None = None,
    ssh_key_file: Path | None = None, known_hosts_file: Path | None = None,
    keyring: signatures.Keyring | None = None,
) -> Source:
    """A plain directory when ``url`` is a folder without Git, else a :class:`GitSource`
    (that applies only commits signed by a key of ``keyring``, when given)."""
    local = Path(url).expanduser()
    if "://" not in url and local.is_dir() and not _is_git_repository(local):
        if keyring is not None:
            raise BadSource(f"{url}: signature verification is on, and a plain folder has no "
                            "signed commits: use a Git repository")
        return DirectorySource(local / path if path not in ("", ".") else local)
    if "://" not in url and local.exists():
        url = str(local.resolve())
    return GitSource(url, ref=ref, path=path, cache_dir=cache_dir, token=token,
                     ssh_key_file=ssh_key_file, known_hosts_file=known_hosts_file,
                     keyring=keyring)


def _is_git_repository(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def credential_environment(*, token: str | None, ssh_key_file: Path | None,
                           known_hosts_file: Path | None) -> dict[str, str]:
    """The environment that gives one git process its credentials (and never prompts)."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true"}
    if token:
        basic = base64.b64encode(f"reconciler:{token}".encode()).decode()
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                   GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
    if ssh_key_file is not None or known_hosts_file is not None:
        command = ["ssh", "-o", "BatchMode=yes"]
        if ssh_key_file is not None:
            command += ["-i", str(ssh_key_file), "-o", "IdentitiesOnly=yes"]
        if known_hosts_file is not None:
            command += ["-o", f"UserKnownHostsFile={known_hosts_file}",
                        "-o", "StrictHostKeyChecking=yes"]
        else:
            command += ["-o", "StrictHostKeyChecking=accept-new"]
        env["GIT_SSH_COMMAND"] = shlex.join(command)
    return env


class DirectorySource:
    """A folder read as it is now; its revision is its content digest (``dir:<sha256>``)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._last: tuple[str, tuple[model.SourceFile, ...]] | None = None

    def check(self) -> str:
        try:
            files, revision = directory.read_directory(self._root)
        except (directory.UnreadableDirectory, OSError) as e:
            raise SourceUnavailable(f"{self._root}: {e}") from e
        self._last = (revision, tuple(files))
        return revision

    def read(self, revision: str) -> Snapshot:
        if self._last is None or self._last[0] != revision:
            self.check()
        assert self._last is not None
        if self._last[0] != revision:
            raise SourceUnavailable(f"{self._root} changed while being read; retrying")
        return Snapshot(revision=revision, files=self._last[1], source=str(self._root),
                        ref="(directory)")


class GitSource:
    """A Git remote followed through a bare clone in ``cache_dir``. Thread-safe."""

    def __init__(
        self, url: str, *, ref: str, path: str = ".", cache_dir: Path,
        token: str | None = None, ssh_key_file: Path | None = None,
        known_hosts_file: Path | None = None, keyring: signatures.Keyring | None = None,
    ) -> None:
        self._url = url
        self._keyring = keyring
        self._trusted: set[tuple[str, str | None]] = set()
        """Commits whose signature was found good, with the trusted set's version then."""
        self._ref = ref
        self._path = "" if path in ("", ".") else path.strip("/")
        self._cache_dir = cache_dir
        self._token = token
        self._ssh_key_file = ssh_key_file
        self._known_hosts_file = known_hosts_file
        self._lock = threading.Lock()
        self._repo: git.Repo | None = None
        self._pinned = ref.lower() if _SHA.match(ref.lower()) else None
        self._remote_ref: str | None = None
        """The full remote ref name the ref resolved to last (what to fetch)."""

    @property
    def display_url(self) -> str:
        """The URL without credentials written in it (``https://user:pw@host`` -> host)."""
        return re.sub(r"(://)[^/@]+@", r"\1", self._url)

    # -- the interface ---------------------------------------------------------------------

    def check(self) -> str:
        """The commit the ref points at on the remote now: one ``ls-remote``, nothing else."""
        with self._lock:
            if self._pinned is not None:
                return self._resolve_pinned()
            return self._remote_commit()

    def read(self, revision: str) -> Snapshot:
        """The files of ``revision`` under the repo path, fetching it first if it is new."""
        with self._lock:
            repo = self._bare()
            commit = self._commit(repo, revision)
            if commit is None:
                self._fetch(repo)
                commit = self._commit(repo, revision)
            if commit is None:
                raise BadSource(f"{self.display_url}: commit {revision} not found after fetch")
            self._verify(commit.hexsha)
            try:
                files = self._files(commit)
            except ValueError as e:
                if "could not be resolved" not in str(e):
                    raise
                # A fetch cut short (kill -9 of the controller) left the commit without all
                # its objects; git will not fetch what it thinks it has: start the copy anew.
                self._discard_copy()
                raise SourceUnavailable(
                    f"{self.display_url}: the local copy lacked objects of {revision[:12]} "
                    "(a fetch was cut short): cleared, fetched again at the next poll"
                ) from None
            return Snapshot(
                revision=commit.hexsha, files=files, source=self.display_url, ref=self._ref,
                author=f"{commit.author.name} <{commit.author.email}>",
                message=str(commit.message).strip(), committed_at=float(commit.committed_date))

    # -- git plumbing ----------------------------------------------------------------------

    def _git(self, repo: git.Repo | None = None) -> Any:
        """A git command runner whose commands carry the credentials, never stored."""
        runner = repo.git if repo is not None else git.Git()
        runner.update_environment(**self._environment())
        return runner

    def _environment(self) -> dict[str, str]:
        return credential_environment(token=self._token, ssh_key_file=self._ssh_key_file,
                                      known_hosts_file=self._known_hosts_file)

    def _run(self, repo: git.Repo | None, command: str, *args: str) -> str:
        try:
            output: str = getattr(self._git(repo), command)(
                *args, kill_after_timeout=_COMMAND_TIMEOUT)
            return output
        except git.exc.GitCommandError as e:
            # Not chained: the wrapped error's text holds the command line, credentials and all.
            raise SourceUnavailable(
                f"{self.display_url}: git {command} failed: {self._clean(e.stderr)}") from None
        except (git.exc.GitError, OSError) as e:
            raise SourceUnavailable(f"{self.display_url}: git {command} failed: "
                                    f"{type(e).__name__}") from None

    def _clean(self, stderr: Any) -> str:
        text = str(stderr or "").strip().removeprefix("stderr:").strip(" '\n")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        text = "; ".join(lines[-3:]) or "no message"
        secrets = [s for s in (self._token, self._url if "@" in self._url else None) if s]
        return redact.mask_text(text, secrets)

    def _verify(self, sha: str) -> None:
        """Raise :class:`UntrustedRevision` unless ``sha`` is signed by a trusted key."""
        if self._keyring is None:
            return
        try:
            environment = self._keyring.environment()
        except signatures.SignatureError as e:
            raise BadSource(f"trusted keys: {e.reason}") from e
        if (sha, self._keyring.digest) in self._trusted:
            return
        runner = git.Git(str(self._cache_dir))  # its own runner: the environment stays here
        runner.update_environment(**environment)
        try:
            output = runner.log("-1", f"--format={signatures.FORMAT}", sha,
                                kill_after_timeout=_COMMAND_TIMEOUT)
        except git.exc.GitCommandError as e:
            raise SourceUnavailable(f"{self.display_url}: git log failed: "
                                    f"{self._clean(e.stderr)}") from None
        found = signatures.verdict(sha, str(output))
        if not found.trusted:
            raise UntrustedRevision(found)
        self._trusted.add((sha, self._keyring.digest))

    def _discard_copy(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None
        shutil.rmtree(self._cache_dir, ignore_errors=True)

    def _bare(self) -> git.Repo:
        if self._repo is None:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            if (self._cache_dir / "HEAD").is_file():
                self._repo = git.Repo(self._cache_dir)
            else:
                self._repo = git.Repo.init(self._cache_dir, bare=True)
        return self._repo

    def _remote_refs(self, *patterns: str, tags: bool = False) -> dict[str, str]:
        """``ls-remote`` as ``{ref name: commit}``; annotated tags give their commit."""
        options = ("--tags",) if tags else ()
        output = self._run(None, "ls_remote", *options, self._url, *patterns)
        refs: dict[str, str] = {}
        for line in output.splitlines():
            sha, _, name = line.partition("\t")
            if name.endswith("^{}"):
                refs[name[:-3]] = sha  # the peeled commit wins over the tag object
            else:
                refs.setdefault(name, sha)
        return refs

    def _remote_commit(self) -> str:
        ref = self._ref
        if any(c in ref for c in "*?["):
            tags = self._remote_refs(tags=True)
            matching = {name.removeprefix("refs/tags/"): sha for name, sha in tags.items()
                        if fnmatch.fnmatchcase(name.removeprefix("refs/tags/"), ref)}
            if not matching:
                raise BadSource(f"{self.display_url}: no tag matches {ref!r}")
            newest = newest_tag(matching)
            self._remote_ref = f"refs/tags/{newest}"
            return matching[newest]
        refs = self._remote_refs(f"refs/heads/{ref}", f"refs/tags/{ref}")
        for name in (f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if name in refs:
                self._remote_ref = name
                return refs[name]
        raise BadSource(f"{self.display_url}: no branch or tag {ref!r}")

    def _resolve_pinned(self) -> str:
        assert self._pinned is not None
        if len(self._pinned) == 40:
            return self._pinned
        repo = self._bare()
        commit = self._commit(repo, self._pinned)
        if commit is None:
            self._fetch(repo)
            commit = self._commit(repo, self._pinned)
        if commit is None:
            raise BadSource(f"{self.display_url}: no commit {self._pinned}")
        self._pinned = commit.hexsha
        return commit.hexsha

    def _fetch(self, repo: git.Repo) -> None:
        """Fetch the ref the last check found (everything for a pinned commit)."""
        if self._pinned is not None:
            refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        else:
            if self._remote_ref is None:
                self._remote_commit()
            refspecs = [f"+{self._remote_ref}:{self._remote_ref}"]
        self._run(repo, "fetch", "--no-write-fetch-head", self._url, *refspecs)

    @staticmethod
    def _commit(repo: git.Repo, revision: str) -> Any:
        try:
            return repo.commit(revision)
        except (ValueError, git.exc.BadName, git.exc.GitError):
            return None

    def _files(self, commit: Any) -> tuple[model.SourceFile, ...]:
        tree = commit.tree
        if self._path:
            try:
                tree = tree / self._path
            except KeyError:
                raise BadSource(f"{self.display_url}@{commit.hexsha[:12]}: no folder "
                                f"{self._path!r}") from None
            if tree.type != "tree":
                raise BadSource(f"{self.display_url}@{commit.hexsha[:12]}: {self._path!r} is "
                                "not a folder")
        prefix = len(tree.path) + 1 if tree.path else 0
        files = []
        problems: list[str] = []
        total = 0
        for item in tree.traverse():
            relative = item.path[prefix:]
            if item.type != "blob" or not loading.is_config_file(relative):
                continue
            # Only regular files: a link's blob is its target path, never the file it names.
            if stat.S_ISLNK(item.mode):
                problems.append(f"{relative}: symbolic link not allowed: commit the file itself")
                continue
            if item.size > parse.MAX_FILE_BYTES:
                problems.append(f"{relative}: file too large: {item.size} bytes, the limit is "
                                f"{parse.MAX_FILE_BYTES}")
                continue
            total += item.size
            if total > parse.MAX_REPO_BYTES:
                problems.append(f"{relative}: the config files exceed {parse.MAX_REPO_BYTES} "
                                "bytes in total")
                break
            data = item.data_stream.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(f"{relative}: not UTF-8 text ({e.reason} at byte {e.start})")
                continue
            files.append(model.SourceFile(path=relative, text=text))
        if problems:
            raise BadSource("\n".join(sorted(problems)))
        return tuple(sorted(files, key=lambda f: f.path))


def newest_tag(tags: Mapping[str, str] | list[str]) -> str:
    """The newest tag name by version order; tags that are no version lose, by name."""
    def key(name: str) -> tuple[int, Any, str]:
        try:
            return (1, packaging.version.Version(name.lstrip("vV")), name)
        except packaging.version.InvalidVersion:
            return (0, packaging.version.Version("0"), name)
    return max(list(tags), key=key)


# -- small helpers for local repositories (the demo and tests make them) ----------------------


def init_repository(path: Path, *, message: str, branch: str = "main",
                    author: str = "reconciler demo <demo@localhost>") -> str:
    """Make ``path`` a Git repository with everything in it committed; returns the sha."""
    repo = git.Repo.init(path, initial_branch=branch)
    name, _, email = author.partition(" <")
    with repo.config_writer() as writer:
        writer.set_value("user", "name", name)
        writer.set_value("user", "email", email.rstrip(">"))
    return commit_all(path, message=message)


def current_branch(path: Path) -> str:
    return str(git.Repo(path).active_branch.name)


def commit_all(path: Path, *, message: str) -> str:
    """Commit every change in the working tree of ``path``; returns the new commit's sha."""
    repo = git.Repo(path)
    repo.git.add(all=True)
    return str(repo.index.commit(message).hexsha)

