"""A real, throwaway PostgreSQL server for the record store tests (and bench/failover.py).

``initdb`` into a temporary folder, ``postgres`` on a free port (TCP on 127.0.0.1 only, its
socket in the same folder), one fresh database per test, everything removed afterwards.
PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` system user that
the Debian package creates (``scripts/install-test-deps.sh`` installs the package).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from reconciler.shell.ports import free_port
from testbed.processes import stop_process


class PostgresMissing(RuntimeError):
    pass


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise PostgresMissing(
            f"PostgreSQL's {name} is not installed: run scripts/install-test-deps.sh as root "
            f"(Debian package postgresql)")
    return found


@dataclass(frozen=True)
class PostgresServer:
    port: int
    user: str

    def admin_url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database; yields its SQLAlchemy URL and drops it afterwards."""
        name = f"records_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"
        finally:
            with psycopg.connect(self.admin_url(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    initdb, postgres = _binary("initdb"), _binary("postgres")
    as_root = os.geteuid() == 0
    run_as = "postgres" if as_root else None
    folder = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    try:
        if as_root:
            account = pwd.getpwnam("postgres")
            os.chown(folder, account.pw_uid, account.pw_gid)
        data = folder / "data"
        subprocess.run(
            [initdb, "-D", str(data), "-U", "reconciler", "--auth=trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            check=True, capture_output=True, user=run_as, cwd=folder)
        port = free_port()
        with open(folder / "postgres.log", "wb") as log:
            process = subprocess.Popen(
                [postgres, "-D", str(data), "-p", str(port), "-k", str(folder),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                stdout=log, stderr=subprocess.STDOUT, user=run_as, cwd=folder,
                start_new_session=True)
        try:
            server = PostgresServer(port=port, user="reconciler")
            _wait_until_ready(server, process, folder / "postgres.log")
            yield server
        finally:
            stop_process(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_ready(
    server: PostgresServer, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode}:\n{log.read_text()}")
        try:
            with psycopg.connect(server.admin_url(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
