"""The bump commit: one image's tag changed in the config repo's ``images.yaml``, committed
as ``reconciler`` and pushed. Imports ``git`` beside :mod:`shell.gitsource`, which only reads.

The working copy (a clone in the state directory) belongs to the watcher: every bump starts
from the remote branch as it is now (fetch, hard reset, clean), so a crash halfway leaves
nothing to repair. The text edit is :func:`core.retag.set_tag`; this module only moves
bytes between it and Git. Credentials reach git through its environment
(:func:`gitsource.credential_environment`), never its arguments or the clone's config.

Exception tree::

    BumpError
    ├── BumpUnavailable   the remote cannot be read or refused the push (someone pushed
    │                     meanwhile): retry at the next check
    └── BumpRefused       images.yaml cannot be edited safely: a human edits it
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import git.exc

from reconciler.core import model, redact, retag
from reconciler.shell import config, gitsource, signatures

AUTHOR = git.Actor("reconciler", "reconciler@localhost")
_TIMEOUT = 120.0


class BumpError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BumpUnavailable(BumpError):
    """Temporary: retry at the next check."""


class BumpRefused(BumpError):
    """Stalling: needs a human."""


UNSIGNED_REFUSED = (
    "verification is on but RECONCILER_SIGNING_KEY_FILE is not set: the controller would "
    "refuse its own commit (set a signing key whose public part is trusted)")


@dataclass(frozen=True)
class Bump:
    """One tag change to commit."""

    image: str
    old_tag: str
    new_tag: str
    digest: str
    """The new tag's manifest digest: named in the message, written when ``pin``."""
    pin: bool
    push: model.PushMode


@dataclass(frozen=True)
class Pushed:
    commit: str
    branch: str


class WorkingCopy:
    """A clone of the config repo's ``branch`` in ``directory``, used only for bumps."""

    def __init__(self, url: str, *, branch: str, directory: Path, token: str | None = None,
                 ssh_key_file: Path | None = None, known_hosts_file: Path | None = None,
                 signing_key: signatures.SigningKey | None = None,
                 must_sign: bool = False) -> None:
        self.url = url
        self._must_sign = must_sign
        """Verification is on: an unsigned commit would be refused by the controller itself."""
        self.branch = branch
        self.directory = directory
        self._token = token
        self._signing_key = signing_key
        """Signs every bump commit when set (``RECONCILER_SIGNING_KEY_FILE``)."""
        self._environment = gitsource.credential_environment(
            token=token, ssh_key_file=ssh_key_file, known_hosts_file=known_hosts_file)
        if signing_key is not None:
            self._environment.update(
                signing_key.environment(), GIT_AUTHOR_NAME=str(AUTHOR.name),
                GIT_AUTHOR_EMAIL=str(AUTHOR.email), GIT_COMMITTER_NAME=str(AUTHOR.name),
                GIT_COMMITTER_EMAIL=str(AUTHOR.email))

    @property
    def display_url(self) -> str:
        return re.sub(r"(://)[^/@]+@", r"\1", self.url)

    def refresh(self) -> None:
        """Make the working tree exactly the remote branch's head."""
        if not (self.directory / ".git").is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            git.Repo.init(self.directory)
        self._run("fetch", "--no-write-fetch-head", self.url,
                  f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        self._run("checkout", "--force", "--detach", f"refs/remotes/origin/{self.branch}")
        self._run("clean", "-fdx")

    def read(self, relative: str) -> str:
        path = self.directory / relative
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise BumpRefused(f"{self.display_url}: {relative}: unreadable "
                              f"({type(e).__name__})") from e

    def exists(self, relative: str) -> bool:
        return (self.directory / relative).is_file()

    def has_remote_branch(self, branch: str) -> bool:
        return bool(self._run("ls-remote", "--heads", self.url, f"refs/heads/{branch}"))

    def commit_and_push(self, *, relative: str, text: str, message: str, branch: str) -> str:
        """Write ``relative``, commit only it as ``reconciler``, push to ``branch``.

        Raises :class:`BumpRefused` before anything is written when verification is on and
        there is no key to sign with: the commit would only be refused on its way back."""
        if self._must_sign and self._signing_key is None:
            raise BumpRefused(UNSIGNED_REFUSED)
        (self.directory / relative).write_text(text, encoding="utf-8")
        repo = git.Repo(self.directory)
        repo.index.add([relative])
        if self._signing_key is None:
            sha = str(repo.index.commit(message, author=AUTHOR, committer=AUTHOR).hexsha)
        else:
            # GitPython's commit cannot sign: git itself does, with gpg and our key's home.
            self._run("commit", f"--gpg-sign={self._signing_key.fingerprint}", "--no-verify",
                      "-m", message, "--", relative)
            sha = self._run("rev-parse", "HEAD").strip()
        self._run("push", "--porcelain", self.url, f"HEAD:refs/heads/{branch}")
        return sha

    def _run(self, command: str, *args: str) -> str:
        runner: Any = git.Repo(self.directory).git if (self.directory / ".git").is_dir() \
            else git.Git()
        runner.update_environment(**self._environment)
        try:
            output: str = runner.execute(["git", command, *args],
                                         kill_after_timeout=_TIMEOUT)
            return output
        except git.exc.GitCommandError as e:
            # Not chained: the wrapped error's text holds the command line.
            text = str(e.stderr or "").strip().removeprefix("stderr:").strip(" '\n")
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            secrets = [s for s in (self._token, self.url if "@" in self.url else None) if s]
            reason = redact.mask_text("; ".join(lines[-3:]) or "no message", secrets)
            raise BumpUnavailable(f"{self.display_url}: git {command} failed: {reason}"
                                  ) from None
        except (git.exc.GitError, OSError) as e:
            raise BumpUnavailable(f"{self.display_url}: git {command} failed: "
                                  f"{type(e).__name__}") from None


def bump(copy: WorkingCopy, *, images_path: str, change: Bump) -> Pushed:
    """Commit ``change`` to ``images_path`` (relative to the repo root) and push it."""
    copy.refresh()
    source = model.SourceFile(path=images_path, text=copy.read(images_path))
    try:
        text = retag.set_tag(source, image=change.image, tag=change.new_tag,
                             digest=change.digest if change.pin else None)
    except retag.EditRefused as e:
        raise BumpRefused(e.args[0]) from e
    branch = copy.branch if change.push == model.PushMode.DIRECT else retag.bump_branch(
        image=change.image, tag=change.new_tag)
    message = retag.commit_message(image=change.image, old_tag=change.old_tag,
                                   new_tag=change.new_tag, digest=change.digest,
                                   pinned=change.pin)
    commit = copy.commit_and_push(relative=images_path, text=text, message=message,
                                  branch=branch)
    return Pushed(commit=commit, branch=branch)


def working_copy(settings: config.Settings, directory: Path) -> WorkingCopy:
    """A working copy of the controller's repo and branch in ``directory`` (bumps, promotions),
    signing its commits with ``RECONCILER_SIGNING_KEY_FILE`` when it is set."""
    signing = signatures.SigningKey(key_file=settings.signing_key_file) \
        if settings.signing_key_file is not None else None
    return WorkingCopy(settings.repo_url, branch=settings.repo_ref, directory=directory,
                       token=settings.git_token, ssh_key_file=settings.git_ssh_key_file,
                       known_hosts_file=settings.git_known_hosts_file, signing_key=signing,
                       must_sign=settings.verify_signatures)
