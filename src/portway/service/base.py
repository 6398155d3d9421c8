"""What every part of the service shares: the store, the read helper and the write path."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from portway.model.backend_policy import BackendPolicy
from portway.service.auth import Actor, require_admin, require_write
from portway.store import Reader, Store, Transaction

T = TypeVar("T")


def new_id() -> str:
    return uuid.uuid4().hex


class ServiceBase:
    """Holds the store and the operator's backend policy (strict unless told otherwise);
    the mixins in this package add the operations."""

    def __init__(self, store: Store, *, backend_policy: BackendPolicy | None = None) -> None:
        self.store = store
        self.backend_policy = backend_policy or BackendPolicy()

    def _read(self, query: Callable[[Reader], T]) -> T:
        return self.store.read(query)

    @contextmanager
    def _write(self, actor: Actor, project: str | None = None) -> Iterator[Transaction]:
        """The one way to change configuration: a transaction as ``actor``, entered only
        once ``actor`` may write ``project`` (None: a service-wide change, admins only).

        The body makes the change and records it with ``tx.record``; the store refuses to
        commit a write without its one change record. Whatever the body raises rolls the
        whole write back, so a rule checked inside it sees committed state only.
        """
        if project is None:
            require_admin(actor)
        with self.store.transaction(actor.name) as tx:
            if project is not None:
                require_write(tx, actor, project)
            yield tx
