"""Engine construction for the two supported dialects, and schema migration on open."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, Engine

from portway.errors import ConfigError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# How long a SQLite writer waits for the write lock before failing (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Any constant will do: it only has to be the same on every node migrating one database.
_PG_MIGRATION_LOCK = 0x706F7274
# A PostgreSQL host that stops answering (lost, cut off) must fail a call in seconds, not
# hang it on the kernel's TCP retransmissions (a pooled connection's ping waited over a
# minute): libpq's own limits, each one unless the URL sets it. tcp_user_timeout is in
# milliseconds; it bounds data left unacknowledged, never a slow but living server.
PG_TIMEOUTS = {"connect_timeout": "3", "tcp_user_timeout": "3000"}


def create_engine(url: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://...`` URLs."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ConfigError(f"use postgresql+psycopg:// (psycopg 3), not {parsed.drivername}")
        limits = {k: v for k, v in PG_TIMEOUTS.items() if k not in parsed.query}
        return sa.create_engine(parsed.update_query_dict(limits), pool_pre_ping=True)
    raise ConfigError(f"unsupported store URL scheme {parsed.drivername!r}")


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ConfigError("the SQLite store needs a file path: sqlite:////abs/path/portway.db")
    _private_database_file(Path(database))
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that "begin" below
        # decides how each transaction starts.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the database write lock up front: a deferred transaction that
        # reads first and then writes can fail with SQLITE_BUSY instead of waiting.
        write = conn.get_execution_options().get("portway_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _private_database_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (SQLite gives its -wal and -shm
    files the database file's mode, whatever the umask), and tighten files an older
    version left open to group or others."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    opened = []
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(0o600)
                opened.append(f"{file.name} ({mode:04o})")
    if opened:
        log.warning("store files were open to other users; now 0600: %s", ", ".join(opened))


def compact(engine: Engine) -> None:
    """Rewrite the database so old page images and row versions are gone: SQLite VACUUMs
    and empties its WAL; PostgreSQL rewrites the certificates table (VACUUM FULL)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM FULL certificates")
        return
    # VACUUM refuses to run in a transaction, and the "begin" hook above always opens
    # one: use the DB-API connection, which the connect hook left in autocommit.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("VACUUM")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision, in one transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect().execution_options(portway_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            # Several nodes may start at once; only one may run the migrations.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
