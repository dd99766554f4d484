"""Signed revisions: the keys the host trusts, the verdict on a commit, the key that signs.

The only module that runs ``gpg``. Trust lives on the host, never in the config repo:

- ``RECONCILER_TRUSTED_KEYS_FILE``: armored OpenPGP public keys. They are imported into a
  GNUPGHOME the controller owns (``<state dir>/gnupg/trusted``), rebuilt from scratch when
  the file changes, so a key taken out of the file is no longer trusted;
- ``RECONCILER_ALLOWED_SIGNERS_FILE``: SSH signing keys, in ``ssh-keygen``'s allowed signers
  form (Git's ``gpg.ssh.allowedSignersFile``).

Git checks the signature (``git log --format=%G?...``, run by :mod:`gitsource` with
:meth:`Keyring.environment`); :func:`verdict` reads its answer. Only ``G`` (a good signature
by a key of the trusted set) is trusted; everything else is refused with who signed, with
which key and why.

:class:`SigningKey` is the controller's own key (``RECONCILER_SIGNING_KEY_FILE``, an armored
secret key without passphrase) that signs its registry-bump commits.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

FORMAT = "%G?%x1f%GS%x1f%GK%x1f%GF%x1f%GP%x1f%an <%ae>"
"""What ``git log -1 --format`` prints for :func:`verdict` (fields split by US, 0x1f)."""
_TIMEOUT = 60.0
_WHY = {
    "N": "it is not signed",
    "B": "its signature is bad (the commit changed after it was signed)",
    "E": "its signature cannot be checked: the key is not in the trusted set",
    "U": "the key is not in the trusted set",
    "X": "the signature has expired",
    "Y": "the key that made the signature has expired",
    "R": "the key that made the signature is revoked",
}


class SignatureError(Exception):
    """The trusted keys or the signing key cannot be used: stalling, the operator fixes the
    host file. ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verdict:
    """What Git found on one commit."""

    commit: str
    status: str
    """Git's ``%G?``: G good and trusted, U untrusted, E key unknown, N unsigned, B bad..."""
    signer: str | None
    key: str | None
    author: str | None

    @property
    def trusted(self) -> bool:
        return self.status == "G"

    @property
    def reason(self) -> str:
        """Why the commit is refused, for records, status and notifications."""
        who = f" by {self.signer}" if self.signer else ""
        key = f" with key {self.key}" if self.key else ""
        signed = f"; signed{who}{key}" if self.status != "N" else ""
        by = f" (author {self.author})" if self.author else ""
        why = _WHY.get(self.status, f"git says {self.status!r}")
        return (f"refused: commit {self.commit[:12]}{by} is not signed by a trusted key: "
                f"{why}{signed}")


def verdict(commit: str, output: str) -> Verdict:
    """Read ``git log -1 --format=FORMAT`` of ``commit``."""
    fields = (output.strip("\n").split("\x1f") + [""] * 6)[:6]
    status, signer, key, fingerprint, primary, author = (f.strip() for f in fields)
    return Verdict(commit=commit, status=status or "N", signer=signer or None,
                   key=fingerprint or key or primary or None, author=author or None)


class Keyring:
    """The trusted set, where ``git`` can check signatures against it. Thread-safe."""

    def __init__(self, *, home: Path, trusted_keys_file: Path | None,
                 allowed_signers_file: Path | None) -> None:
        self._home = home
        self._keys_file = trusted_keys_file
        self._signers_file = allowed_signers_file
        self._digest: str | None = None
        self._lock = threading.Lock()

    @property
    def digest(self) -> str | None:
        """The trusted set's version (of the file last read): a verdict holds for it only."""
        return self._digest

    def environment(self) -> dict[str, str]:
        """The environment of the ``git log`` that checks signatures (keyring made fresh
        when the trusted keys file changed)."""
        with self._lock:
            self._refresh()
        env = {"GNUPGHOME": str(self._home), "GIT_CONFIG_COUNT": "2",
               "GIT_CONFIG_KEY_0": "gpg.program", "GIT_CONFIG_VALUE_0": "gpg",
               "GIT_CONFIG_KEY_1": "gpg.ssh.allowedSignersFile",
               # No SSH signer is trusted without the file: an empty one says so to Git.
               "GIT_CONFIG_VALUE_1": str(self._signers_file or os.devnull)}
        return env

    def _refresh(self) -> None:
        data = _read(self._keys_file) if self._keys_file is not None else b""
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest and self._home.is_dir():
            return
        shutil.rmtree(self._home, ignore_errors=True)
        self._home.mkdir(parents=True, mode=0o700)
        # Checking signatures needs no agent: git's gpg must not leave one running either.
        (self._home / "gpg.conf").write_text("no-autostart\n", encoding="utf-8")
        if data:
            # gpg may exit 2 after importing, only because it could not ask an agent about
            # secret keys (none here, none wanted): what was imported is what it lists.
            problems = _gpg_tolerant(self._home, "--import", stdin=data)
            listed = _gpg(self._home, "--with-colons", "--list-keys").decode()
            fingerprints = _fingerprints(listed)
            if not fingerprints:
                raise SignatureError(f"{self._keys_file}: no OpenPGP public key could be "
                                     f"imported ({problems or 'none found'})")
            # Every key of the file is trusted: that is what the file is for. Without owner
            # trust gpg calls a good signature "U" (good, validity unknown).
            trust = "".join(f"{line.split(':')[9]}:6:\n" for line in fingerprints)
            _gpg(self._home, "--import-ownertrust", stdin=trust.encode())
        self._digest = digest


class SigningKey:
    """The controller's own OpenPGP key, imported into a GNUPGHOME of its own, that signs its
    commits (``git commit -S<fingerprint>`` with :meth:`environment`).

    The home is a private temporary folder (mode 0700) removed by :meth:`close`: signing
    needs gpg-agent, whose socket path must stay under the kernel's 107 bytes, which a
    home under a deep state directory can exceed."""

    def __init__(self, *, key_file: Path) -> None:
        home = Path(tempfile.mkdtemp(prefix="reconciler-gnupg-"))
        self._home = home
        try:
            _gpg(home, "--import", stdin=_read(key_file), agent=True)
            listed = _gpg(home, "--with-colons", "--list-secret-keys", agent=True).decode()
        except SignatureError as e:
            self.close()
            raise SignatureError(f"{key_file}: no secret OpenPGP key could be imported "
                                 f"({e.reason})") from e
        fingerprints = [line.split(":")[9] for line in _fingerprints(listed, kind="sec")]
        if not fingerprints:
            self.close()
            raise SignatureError(f"{key_file}: holds no secret OpenPGP key")
        self.fingerprint = fingerprints[0]

    def environment(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self._home)}

    def close(self) -> None:
        """Stop the gpg-agent that signing started in this home, and remove the home."""
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self._env(),
                       capture_output=True, timeout=_TIMEOUT, check=False)
        shutil.rmtree(self._home, ignore_errors=True)

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self.environment()}


def _fingerprints(colons: str, *, kind: str = "pub") -> list[str]:
    """The ``fpr`` lines that follow each primary key of ``kind`` in ``--with-colons``."""
    out, primary = [], False
    for line in colons.splitlines():
        record = line.split(":", 1)[0]
        if record in ("pub", "sec", "sub", "ssb"):
            primary = record == kind
        elif record == "fpr" and primary:
            out.append(line)
            primary = False
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SignatureError(f"{path}: cannot read ({e.strerror})") from e


def _gpg_tolerant(home: Path, *args: str, stdin: bytes | None = None) -> str:
    """Run gpg without an agent, whatever its exit status; its complaints, for errors."""
    try:
        _gpg(home, *args, stdin=stdin)
    except SignatureError as e:
        return e.reason
    return ""


def _gpg(home: Path, *args: str, stdin: bytes | None = None, agent: bool = False) -> bytes:
    # Public keys need no agent; one started for nothing would outlive us (and its socket
    # path may be too long under a deep state dir).
    command = ["gpg", "--batch", "--no-tty", *(() if agent else ("--no-autostart",)),
               "--homedir", str(home), *args]
    try:
        done = subprocess.run(command, input=stdin, capture_output=True,
                              timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SignatureError(f"gpg {args[0]} failed: {type(e).__name__}") from e
    if done.returncode != 0:
        # gpg's summary lines come last; what went wrong is said before them.
        lines = [x for x in done.stderr.decode(errors="replace").splitlines()
                 if x.strip() and "Total number processed" not in x
                 and not x.strip().startswith(("gpg:               ", "gpg:       "))]
        raise SignatureError(f"gpg {args[0]} failed (exit {done.returncode}): "
                             f"{'; '.join(lines[:3]) or 'no message'}")
    return done.stdout
