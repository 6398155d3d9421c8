"""What every part of the service shares: the store and the write helper."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from portway.model.backend_policy import BackendPolicy
from portway.store import Reader, Store

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
