"""Real Git repositories for controller tests: made with GitPython, served over file URLs or
``git daemon`` on a free port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.shell.ports import free_port
from testbed.processes import stop_process


@dataclass
class Upstream:
    """A bare repository (what the controller follows) and a working clone to commit from."""

    bare: Path
    work: Path

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    @classmethod
    def create(cls, root: Path, files: Mapping[str, str], *, message: str = "first") -> Upstream:
        bare = root / "upstream.git"
        git.Repo.init(bare, bare=True, initial_branch="main")
        work = root / "work"
        repo = git.Repo.clone_from(bare.as_uri(), work)
        with repo.config_writer() as config:
            config.set_value("user", "name", "Alice Release")
            config.set_value("user", "email", "alice@example.org")
        repo.git.checkout("-b", "main")
        upstream = cls(bare=bare, work=work)
        upstream.commit(files, message=message)
        return upstream

    def commit(self, files: Mapping[str, str | None], *, message: str,
               branch: str = "main") -> str:
        """Write (or delete, for None) files, commit and push; returns the new sha."""
        repo = git.Repo(self.work)
        for relative, text in files.items():
            path = self.work / relative
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        repo.git.add(all=True)
        sha = repo.index.commit(message).hexsha
        repo.git.push("origin", f"HEAD:refs/heads/{branch}")
        return str(sha)

    def tag(self, name: str, *, annotated: bool = False, at: str = "HEAD") -> None:
        repo = git.Repo(self.work)
        if annotated:
            repo.create_tag(name, ref=at, message=f"release {name}")
        else:
            repo.create_tag(name, ref=at)
        repo.git.push("origin", f"refs/tags/{name}")


@dataclass
class Daemon:
    url: str
    log: Path

    def upload_packs(self) -> int:
        """How many times a client connected to read (ls-remote or fetch)."""
        return self.log.read_text().count("Request upload-pack")


class ServedGit:
    """``git daemon`` exporting every repository under ``base``, stoppable and restartable on
    the same port (Git down and back, as the controller sees it)."""

    def __init__(self, base: Path, log: Path, *, port: int | None = None) -> None:
        self.base = base
        self.log = log
        self.port = port or free_port()
        self.url = f"git://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServedGit:
        start_at = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self._process = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--export-all", "--verbose",
                 "--informative-errors", f"--base-path={self.base}", "--listen=127.0.0.1",
                 f"--port={self.port}", str(self.base)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while "Ready to rumble" not in self.log.read_bytes()[start_at:].decode(errors="replace"):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"git daemon did not start: {self.log.read_text()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None


@contextmanager
def git_daemon(base: Path, log: Path) -> Iterator[Daemon]:
    """``git daemon`` exporting every repository under ``base`` on a free port."""
    served = ServedGit(base, log).start()
    try:
        yield Daemon(url=served.url, log=log)
    finally:
        served.stop()
