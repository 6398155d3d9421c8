"""A throwaway PostgreSQL cluster from Debian's binaries, for the session's shared server
and for tests that stop and start their own (a store outage)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN_DIRS = [
    Path("/usr/lib/postgresql/15/bin"),
    *sorted(Path("/usr/lib/postgresql").glob("*/bin")),
]


def pg_bin() -> Path | None:
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def as_postgres(args: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server tools as the postgres user."""
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *args]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(args)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """initdb'd in a temporary directory, listening on 127.0.0.1 on a free port."""

    def __init__(self) -> None:
        bin_dir = pg_bin()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL binaries not found: run scripts/test.sh (installs 'postgresql')"
            )
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="portway-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres")
        self.data = self.root / "data"
        self.port = free_port()
        subprocess.run(
            as_postgres(
                [str(bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
            ),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> list[str]:
        return as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), *args]
        )

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        subprocess.run(self._ctl("-o", opts, "-w", "start"), check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self._ctl("-m", mode, "-w", "stop"), check=False, capture_output=True)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
