"""Shared fixtures: a throwaway PostgreSQL cluster and a store fixture over both dialects."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portway.model.backend_policy import BackendPolicy

# Test backends listen on 127.0.0.1, which the production default refuses: fixtures that
# build a service or a data plane pass this policy (loopback named, everything else open).
TEST_POLICY = BackendPolicy.build(allow=["127.0.0.0/8", "::1/128", "0.0.0.0/0", "::/0"])

PG_BIN_DIRS = [
    Path("/usr/lib/postgresql/15/bin"),
    *sorted(Path("/usr/lib/postgresql").glob("*/bin")),
]


def _pg_bin() -> Path | None:
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _as_postgres(args: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server tools as the postgres user."""
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *args]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(args)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server started for this test session.

    A missing server fails the test instead of skipping it: scripts/test.sh installs
    Debian's ``postgresql``, so its absence is a broken setup, not a platform limit."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL binaries not found: run scripts/test.sh (installs 'postgresql')")
    root = Path(tempfile.mkdtemp(prefix="portway-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    data, port = root / "data", _free_port()
    run = {"check": True, "capture_output": True}
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        **run,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
    subprocess.run(_as_postgres([*ctl, "-o", opts, "-w", "start"]), **run)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([*ctl, "-m", "fast", "-w", "stop"]), check=False)
        shutil.rmtree(root, ignore_errors=True)


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
