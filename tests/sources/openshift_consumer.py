"""The OpenShift source as a separate process, for the SIGKILL test:

    python -m tests.sources.openshift_consumer STOMP_URL DB_FILE

Its ``OpenShiftRoutes`` is a SQLite file: each ``apply`` is one transaction that reads
the application's state, folds the event in with the shared ``apply_event`` and writes
it back together with the event, committed before ``apply`` returns, as the
service-backed implementation commits before the source acknowledges.

Each transaction holds for ``COMMIT_DELAY`` before committing, as a store across the
network does: a kill then lands inside a transaction most of the time, which is exactly
where acknowledging before the commit would lose the event."""

from __future__ import annotations

import asyncio
import logging
import pickle
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from portway.protocol.routing_spi import RoutingEvent, action_name
from portway.runtime.config import parse_stomp_url
from portway.sources.openshift import OpenShiftSettings, OpenShiftSource
from portway.sources.openshift_routes import AppKey, OpenShiftPolicy, apply_event

POLICY = OpenShiftPolicy(domain="cloud.example.org")
COMMIT_DELAY = 0.005  # seconds
SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (key BLOB PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS applied (
    seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL, action TEXT NOT NULL, event BLOB NOT NULL
);
"""


class SqliteOpenShiftRoutes:
    def __init__(self, path: Path, policy: OpenShiftPolicy = POLICY) -> None:
        self.policy = policy
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.executescript(SCHEMA)

    def apply(self, event: RoutingEvent, message_id: str) -> None:
        key = pickle.dumps(AppKey.of(event))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT state FROM apps WHERE key = ?", (key,)).fetchone()
            after = apply_event(pickle.loads(row[0]) if row else None, event, self.policy)
            if after is None:
                self.db.execute("DELETE FROM apps WHERE key = ?", (key,))
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO apps VALUES (?, ?)", (key, pickle.dumps(after))
                )
            self.db.execute(
                "INSERT INTO applied (message_id, action, event) VALUES (?, ?, ?)",
                (message_id, action_name(event), pickle.dumps(event)),
            )
            time.sleep(COMMIT_DELAY)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def read(path: Path) -> tuple[dict[Any, Any], list[tuple[str, RoutingEvent]]]:
    """(AppKey → AppRoutes, [(message id, event)] in commit order) of a consumer's file."""
    db = sqlite3.connect(path)
    try:
        apps = {pickle.loads(k): pickle.loads(v) for k, v in db.execute("SELECT * FROM apps")}
        rows = db.execute("SELECT message_id, event FROM applied ORDER BY seq").fetchall()
    finally:
        db.close()
    return apps, [(m, pickle.loads(e)) for m, e in rows]


def count(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM applied").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet
    finally:
        db.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    url = parse_stomp_url(sys.argv[1], flag="url")
    assert url is not None
    settings = OpenShiftSettings(
        url=url,
        policy=POLICY,
        client_id="portway-sigkill-test",
        heartbeat=1.0,
        backoff=0.1,
        max_backoff=1.0,
        connect_timeout=5.0,
    )
    source = OpenShiftSource(SqliteOpenShiftRoutes(Path(sys.argv[2])), settings)
    asyncio.run(source.run())


if __name__ == "__main__":
    main()
