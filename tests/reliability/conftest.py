"""Fixtures of the reliability suite: a PostgreSQL server to take away from the controller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed import postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    with postgres.running_postgres() as server:
        yield server
