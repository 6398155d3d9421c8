"""Which certificate answers a TLS ClientHello: exact name, then wildcard, then default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class SniTable(Generic[T]):
    """Immutable map from server name to whatever the caller keeps per certificate
    (an ``ssl.SSLContext`` in the data plane); O(1) per handshake."""

    __slots__ = ("_default", "_exact", "_wildcard")

    def __init__(self, entries: Iterable[tuple[Iterable[str], T]], default: T) -> None:
        exact: dict[str, T] = {}
        wildcard: dict[str, T] = {}
        for names, value in entries:
            for name in names:
                if name.startswith("*."):
                    wildcard.setdefault(name[2:], value)
                else:
                    exact.setdefault(name, value)
        self._exact: Mapping[str, T] = exact
        self._wildcard: Mapping[str, T] = wildcard
        self._default = default

    def lookup(self, server_name: str | None) -> T:
        if not server_name:
            return self._default
        name = server_name.lower().rstrip(".")
        found = self._exact.get(name)
        if found is not None:
            return found
        parent = name.partition(".")[2]
        return self._wildcard.get(parent, self._default)
