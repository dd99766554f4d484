"""Record store fixtures (the same tests on a SQLite file and on a real PostgreSQL server),
and a Marathon client of the test's own dev cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.devcluster import launch
from reconciler.shell import marathon
from testbed import postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    with postgres.running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database (its SQLite folder exists)."""
    if request.param == "sqlite":
        (tmp_path / "state").mkdir(exist_ok=True)
        yield f"sqlite:///{tmp_path / 'state' / 'reconciler.db'}"
        return
    server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        yield url


@pytest.fixture
def client(devcluster: launch.RunningCluster) -> Iterator[marathon.MarathonClient]:
    """A Marathon client of the test's own dev cluster."""
    client = marathon.MarathonClient(marathon.ClientSettings(urls=(devcluster.url,), timeout=10))
    try:
        yield client
    finally:
        client.close()
