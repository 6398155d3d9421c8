"""Debian's PostgreSQL 15 in a namespace: a primary, and a streaming replica made from it
with ``pg_basebackup -R`` (the setup docs/ha.md shows)."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.ha.netns import SUBNET, Net, NetnsError
from tests.pg import as_postgres, pg_bin

PORT = 5432


def _bin(tool: str) -> str:
    directory = pg_bin()
    if directory is None:
        raise NetnsError("PostgreSQL binaries not found: run scripts/test.sh (installs them)")
    return str(directory / tool)


@dataclass
class Postgres:
    """One server of the pair: ``member``'s namespace, its address, its data directory."""

    net: Net
    member: str
    root: Path

    @property
    def address(self) -> str:
        return self.net.members[self.member]

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str) -> None:
        cmd = [*self.net.exec(self.member), *as_postgres(list(args))]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise NetnsError(f"{' '.join(args)}: {done.stderr.strip()} {log[-2000:]}")

    def init_primary(self) -> None:
        self._prepare()
        self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        # The tier's own subnet may connect, for queries and for replication.
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
            hba.write(f"host replication all {SUBNET}.0/24 trust\n")

    def init_replica(self, primary: Postgres) -> None:
        """``pg_basebackup -R``: a copy of the primary that streams from it, read-only."""
        self._prepare()
        self._run(
            _bin("pg_basebackup"),
            *("-h", primary.address, "-p", str(PORT), "-U", "postgres"),
            *("-D", str(self.data), "-R", "-X", "stream", "-c", "fast"),
        )

    def _prepare(self) -> None:
        self.root.mkdir(parents=True)
        shutil.chown(self.root, user="postgres")

    def start(self) -> None:
        opts = (
            f"-c listen_addresses={self.address} -p {PORT} -k {self.root} -c fsync=off"
            " -c wal_sender_timeout=5s -c wal_receiver_timeout=5s"
        )
        ctl = [_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log")]
        self._run(*ctl, "-o", opts, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def promote(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-w", "promote")

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.address}:{PORT}/{database}"

    def wait_streaming(self, primary: Postgres, timeout: float = 20) -> None:
        """Until the primary lists this replica as streaming."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            with psycopg.connect(primary.dsn(), autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone()
            if row and row[0] >= 1:
                return
            if time.monotonic() > deadline:
                raise NetnsError(f"the replica at {self.address} never streamed")
            time.sleep(0.1)


def wait_replayed(primary: Postgres, timeout: float = 20) -> None:
    """Until every standby has replayed all of the primary's WAL. Replication is
    asynchronous: a primary lost before this loses its last commits on the replica."""
    import psycopg

    query = (
        "SELECT count(*) FROM pg_stat_replication"
        " WHERE replay_lsn IS NOT NULL AND replay_lsn >= pg_current_wal_lsn()"
    )
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            row = conn.execute(query).fetchone()
        if row and row[0] >= 1:
            return
        if time.monotonic() > deadline:
            raise NetnsError("the replica did not catch up with the primary")
        time.sleep(0.05)


def multi_host_url(servers: list[Postgres], database: str) -> str:
    """The URL every node is given: both servers, and only the writable one will do.
    ``connect_timeout`` bounds a connection attempt to a host that does not answer."""
    hosts = "&".join(f"host={s.address}:{PORT}" for s in servers)
    return (
        f"postgresql+psycopg://postgres@/{database}?{hosts}"
        "&target_session_attrs=read-write&connect_timeout=2"
    )
