"""Fixtures of the leader-election tests: a real ZooKeeper and a real PostgreSQL, throwaway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed import postgres, zookeeper


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    with postgres.running_postgres() as server:
        yield server


@pytest.fixture
def database(postgres_server: postgres.PostgresServer) -> Iterator[str]:
    with postgres_server.database() as url:
        yield url


@pytest.fixture
def zk() -> Iterator[zookeeper.ZooKeeper]:
    """Its own server per test: a test may stop it and start it again."""
    with zookeeper.running_zookeeper() as server:
        yield server
