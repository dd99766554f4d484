"""A real, throwaway ZooKeeper server (Debian's ``zookeeper`` package) on a free port.

Debian installs the server as ``/usr/share/java/zookeeper.jar`` (its dependencies are on the
jar's manifest class path) with the configuration in ``/etc/zookeeper/conf``; this runs
``ZooKeeperServerMain`` (standalone) on its own ``zoo.cfg`` and data folder, TCP on
127.0.0.1 only. :meth:`ZooKeeper.stop` and :meth:`ZooKeeper.start` take it away and bring it
back on the same port with the same data (its sessions survive a short stop, as on a real
ensemble member that restarts). ``scripts/install-test-deps.sh`` installs the package.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from reconciler.shell.ports import free_port
from testbed.processes import stop_process

JAR = Path("/usr/share/java/zookeeper.jar")
CONF = Path("/etc/zookeeper/conf")


class ZooKeeperMissing(RuntimeError):
    pass


class ZooKeeper:
    """One standalone server; ``url(path)`` is what ``RECONCILER_ZK_URL`` takes."""

    def __init__(self, folder: Path, *, max_session_timeout: float = 60.0) -> None:
        if not JAR.is_file() or shutil.which("java") is None:
            raise ZooKeeperMissing("ZooKeeper is not installed: run scripts/install-test-deps.sh"
                                   " as root (Debian package zookeeper)")
        self.folder = folder
        self.port = free_port()
        (folder / "data").mkdir(parents=True, exist_ok=True)
        # A short tick: sessions as short as 2 ticks are allowed, and expiry is checked often.
        (folder / "zoo.cfg").write_text(
            f"tickTime=500\ndataDir={folder / 'data'}\nclientPort={self.port}\n"
            f"clientPortAddress=127.0.0.1\nmaxSessionTimeout={int(max_session_timeout * 1000)}\n"
            "admin.enableServer=false\n4lw.commands.whitelist=ruok,stat\n")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/reconciler") -> str:
        return f"zk://{self.hosts}{path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 60.0) -> None:
        with open(self.folder / "zookeeper.log", "ab") as log:
            self._process = subprocess.Popen(
                ["java", "-Xmx256m", "-cp", f"{JAR}:{CONF}",
                 "org.apache.zookeeper.server.ZooKeeperServerMain", str(self.folder / "zoo.cfg")],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited with {self._process.returncode}: "
                                   f"{(self.folder / 'zookeeper.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"ZooKeeper did not answer on {self.hosts} in {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"ruok")
                return conn.recv(4) == b"imok"
        except OSError:
            return False


@contextlib.contextmanager
def running_zookeeper() -> Iterator[ZooKeeper]:
    folder = Path(tempfile.mkdtemp(prefix="reconciler-zk-"))
    server = ZooKeeper(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
