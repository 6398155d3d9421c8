"""The ``Store``: reads on short connections, writes in one revision-bumping transaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from portway.errors import ConflictError, PortwayError, StoreError
from portway.model import Certificate, Proxy
from portway.model.node import Node
from portway.store import rows
from portway.store.changefeed import Watcher
from portway.store.engine import compact, create_engine, migrate
from portway.store.keyring import NO_SECRETS, SecretBox
from portway.store.reader import Reader
from portway.store.schema import nodes
from portway.store.transaction import Transaction

log = logging.getLogger(__name__)
T = TypeVar("T")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn SQLAlchemy/DB-API errors into the Portway tree at the store boundary."""
    try:
        yield
    except PortwayError:
        raise
    except sa_exc.IntegrityError as err:
        raise ConflictError(f"conflicts with an existing object: {err.orig}") from err
    except sa_exc.OperationalError as err:
        # The database cannot be reached or went away (a primary lost, no writable host
        # left in a multi-host URL). The driver's text names the database's hosts: it is
        # for the operator's log; API clients (tenants) get the fact and a retry.
        log.warning("store unavailable: %s", err.orig)
        raise StoreError("the configuration store is unavailable; try again later") from err
    except sa_exc.SQLAlchemyError as err:
        raise StoreError(f"store failure: {err}") from err


class Store:
    """Persistence for Portway's configuration plus its change feed.

    Construct with :func:`open_store`. Reads open a short connection each; writes go
    through :meth:`transaction`, which bumps the global revision exactly once and then
    notifies commit listeners. ``secrets`` seals and opens certificates' private keys.
    """

    def __init__(self, engine: sa.Engine, secrets: SecretBox = NO_SECRETS) -> None:
        self.engine = engine
        self.secrets = secrets
        self._listeners: list[Callable[[int], None]] = []
        self._watchers: list[Watcher] = []
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read(self, query: Callable[[Reader], T]) -> T:
        """Run ``query`` on a consistent read snapshot and return its result."""
        with translate_errors(), self.engine.connect() as conn:
            return query(Reader(conn, self.secrets))

    def current_revision(self) -> int:
        return self.read(Reader.current_revision)

    def load_proxies(self, ids: Iterable[str] | None = None) -> list[Proxy]:
        """Proxies (``None`` = all) with their backends, sorted by id, as snapshots need
        them (without created_at/updated_at)."""
        return self.read(lambda r: r.load_proxies(ids, timestamps=False))

    def load_certificates(self, ids: Iterable[str]) -> list[Certificate]:
        """Certificates (with their keys) by id; the reconciler ships them to data planes."""
        return self.read(lambda r: r.load_certificates(ids))

    def cache_quotas(self) -> dict[str, int]:
        return self.read(Reader.cache_quotas)

    def changed_proxy_ids(self, since_revision: int) -> tuple[int, set[str]]:
        """The current revision and the ids of proxies created, updated or deleted (or
        whose backends changed) after ``since_revision``."""

        def query(reader: Reader) -> tuple[int, set[str]]:
            return reader.current_revision(), reader.changed_proxy_ids(since_revision)

        return self.read(query)

    def revision_marks(self, revisions: Iterable[int]) -> dict[int, str]:
        """Fingerprints of the writes committed as ``revisions`` (see Reader)."""
        return self.read(lambda r: r.revision_marks(revisions))

    def resync_past(self, seen: int, actor: str) -> int:
        """Commit an empty write whose revision is above ``seen``; return its revision
        (a node whose applied revisions were lost in a failover; docs/ha.md)."""
        with self.transaction(actor) as tx:
            tx.skip_past(seen)
            tx.record(kind="store", action="resync", object_id=f"past {seen}", project=None)
        return tx.revision

    @contextmanager
    def transaction(self, actor: str) -> Iterator[Transaction]:
        """One write: lock, bump the revision, yield, commit, then notify listeners.

        Raising inside the block rolls everything back, revision included.
        """
        with (
            translate_errors(),
            self.engine.connect().execution_options(portway_write=True) as conn,
            conn.begin(),
        ):
            tx = Transaction(conn, actor, self.secrets)
            yield tx
            tx.check_recorded()
        self._notify(tx.revision)

    def report_node(self, node: Node) -> None:
        """Record ``node``'s report of itself, outside the revision and the change log
        (state, not configuration: it must wake no reconciler)."""
        row = rows.node_row(node)
        with (
            translate_errors(),
            self.engine.connect().execution_options(portway_write=True) as conn,
            conn.begin(),
        ):
            done = conn.execute(sa.update(nodes).where(nodes.c.name == node.name).values(row))
            if not done.rowcount:
                conn.execute(sa.insert(nodes).values(row))

    def compact(self) -> None:
        """Rewrite the database so that no free page or old row version still holds a
        value since overwritten (run after keys were sealed or sealed again)."""
        with translate_errors():
            compact(self.engine)

    def add_commit_listener(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(revision)`` after every write committed through this Store
        (from the committing thread, which may be a worker thread)."""
        with self._lock:
            self._listeners.append(callback)

    def listen(
        self, callback: Callable[[int], None], *, poll_interval: float = 1.0
    ) -> Callable[[], None]:
        """Watch for writes by any node: LISTEN/NOTIFY on PostgreSQL, polling on SQLite.

        Returns a function that stops the watcher.
        """
        watcher = Watcher(self.engine, self.current_revision, callback, poll_interval=poll_interval)
        self._watchers.append(watcher)
        return watcher.stop

    def _notify(self, revision: int) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback(revision)
            except Exception:  # a broken listener must not undo or hide a committed write
                log.exception("commit listener failed for revision %d", revision)

    def close(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        self._watchers.clear()
        self.engine.dispose()


def open_store(url: str, secrets: SecretBox | None = None) -> Store:
    """Open (creating directories and migrating to head) the store at ``url``.

    ``url`` is ``sqlite:////abs/path/portway.db`` or ``postgresql+psycopg://...``.
    Without ``secrets`` the store cannot write or read certificates' private keys.
    """
    engine = create_engine(url)
    with translate_errors():
        migrate(engine)
    return Store(engine, secrets or NO_SECRETS)
