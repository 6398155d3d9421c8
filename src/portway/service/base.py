"""What every part of the service shares: the store and the write helper."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from portway.store import Reader, Store

T = TypeVar("T")


def new_id() -> str:
    return uuid.uuid4().hex


class ServiceBase:
    """Holds the store; the mixins in this package add the operations."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _read(self, query: Callable[[Reader], T]) -> T:
        return self.store.read(query)
