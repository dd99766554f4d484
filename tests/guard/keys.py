"""Real OpenPGP keys for the signature tests: made by Debian's ``gpg`` in temporary homes
(no passphrase, ed25519), and commits signed with them by ``git commit -S``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from testbed.gitrepos import Upstream


@dataclass(frozen=True)
class Key:
    home: Path
    uid: str
    fingerprint: str

    def export(self, path: Path, *, secret: bool = False) -> Path:
        """The key armored into ``path`` (its secret part with ``secret``)."""
        what = "--export-secret-keys" if secret else "--export"
        path.write_bytes(_gpg(self.home, "--armor", what, self.fingerprint))
        return path


@contextmanager
def made(root: Path, *uids: str) -> Iterator[list[Key]]:
    """One key per uid, each in its own home; their gpg-agents stopped afterwards."""
    keys: list[Key] = []
    try:
        for index, uid in enumerate(uids):
            home = root / f"gnupg-{index}"
            home.mkdir(parents=True, mode=0o700)
            _gpg(home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
            listed = _gpg(home, "--with-colons", "--list-keys").decode()
            fingerprint = next(line.split(":")[9] for line in listed.splitlines()
                               if line.startswith("fpr:"))
            keys.append(Key(home=home, uid=uid, fingerprint=fingerprint))
        yield keys
    finally:
        for key in keys:
            stop_agent(key.home)


def stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   capture_output=True, check=False, timeout=30)


def signed_commit(upstream: Upstream, files: Mapping[str, str], *, message: str,
                  key: Key | None) -> str:
    """Write ``files`` in the working clone, commit (signed by ``key``, or unsigned), push."""
    repo = git.Repo(upstream.work)
    for relative, text in files.items():
        path = upstream.work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    repo.git.add(all=True)
    if key is None:
        repo.git.commit("--allow-empty", "-m", message, "--no-gpg-sign")
    else:
        runner = git.Git(str(upstream.work))
        runner.update_environment(GNUPGHOME=str(key.home))
        runner.execute(["git", "-c", "gpg.program=gpg", "commit", "--allow-empty",
                        f"--gpg-sign={key.fingerprint}", "-m", message])
    repo.git.push("origin", "HEAD:refs/heads/main")
    return str(repo.head.commit.hexsha)


def _gpg(home: Path, *args: str) -> bytes:
    done = subprocess.run(["gpg", "--batch", "--no-tty", "--homedir", str(home), *args],
                          capture_output=True, check=False, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"gpg {' '.join(args)}: {done.stderr.decode()}")
    return done.stdout
