"""Persistence and the change feed: one SQLAlchemy Core schema on SQLite or PostgreSQL.

``open_store(url)`` returns a :class:`Store`; every write is one
:meth:`Store.transaction` that bumps the global revision and logs one change.
"""

from portway.store.reader import Reader
from portway.store.store import Store, open_store
from portway.store.transaction import Transaction

__all__ = ["Reader", "Store", "Transaction", "open_store"]
