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

from tests.support.processes import free_port, stop_process


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


@contextmanager
def git_daemon(base: Path, log: Path) -> Iterator[Daemon]:
    """``git daemon`` exporting every repository under ``base`` on a free port."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--verbose", "--informative-errors",
             f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}", str(base)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while "Ready to rumble" not in log.read_text():
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"git daemon did not start: {log.read_text()}")
            time.sleep(0.02)
        yield Daemon(url=f"git://127.0.0.1:{port}", log=log)
    finally:
        stop_process(process)
