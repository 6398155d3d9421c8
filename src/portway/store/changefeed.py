"""Waking other nodes: LISTEN/NOTIFY on PostgreSQL, polling ``current_revision`` otherwise."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import Engine

from portway.observability.failures import Outage
from portway.store.transaction import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class Watcher:
    """A daemon thread that calls ``callback(revision)`` when the revision moves."""

    def __init__(
        self,
        engine: Engine,
        current: Callable[[], int],
        callback: Callable[[int], None],
        *,
        poll_interval: float = 1.0,
    ) -> None:
        self._engine = engine
        self._current = current
        self._callback = callback
        self._interval = poll_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="portway-store-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        last = -1
        outage = Outage(log, "store watcher")
        while not self._stop.is_set():
            try:
                if self._engine.dialect.name == "postgresql":
                    last = self._listen(last)
                else:
                    last = self._poll(last)
            except Exception as exc:  # keep watching through transient database failures
                outage.failed(exc)
            else:
                outage.worked()
            self._stop.wait(self._interval)

    def _deliver(self, last: int, revision: int) -> int:
        if revision > last:
            self._callback(revision)
            return revision
        return last

    def _poll(self, last: int) -> int:
        return self._deliver(last, self._current())

    def _listen(self, last: int) -> int:
        # The engine's own connection arguments, not the URL rendered again: a multi-host
        # URL (?host=a:5432&host=b:5432, for a primary and its replica) has no libpq URI
        # form, and the dialect is what turns it into host=a,b port=5432,5432.
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        with psycopg.connect(*args, **{**kwargs, "autocommit": True}) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            # Catch up on anything committed before LISTEN took effect.
            last = self._deliver(last, self._current())
            while not self._stop.is_set():
                for note in conn.notifies(timeout=self._interval):
                    last = self._deliver(last, int(note.payload))
                last = self._deliver(last, self._current())
        return last
