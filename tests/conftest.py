"""Shared fixtures: a throwaway PostgreSQL cluster and a store fixture over both dialects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portway.model.backend_policy import BackendPolicy
from tests.pg import PostgresCluster

# Test backends listen on 127.0.0.1, which the production default refuses: fixtures that
# build a service or a data plane pass this policy (loopback named, everything else open).
TEST_POLICY = BackendPolicy.build(allow=["127.0.0.0/8", "::1/128", "0.0.0.0/0", "::/0"])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server started for this test session.

    A missing server fails the test instead of skipping it: scripts/test.sh installs
    Debian's ``postgresql``, so its absence is a broken setup, not a platform limit."""
    try:
        cluster = PostgresCluster()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


def _fresh_pg_database(server_url: str) -> str:
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    dsn = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store, once per dialect; every store test runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'portway.db'}"
    server = request.getfixturevalue("postgres_url")
    return _fresh_pg_database(server)
