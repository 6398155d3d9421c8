"""What the reconciler needs from a store: revisions, proxies, certificates, a wake-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from portway.model import Certificate, Proxy


class ConfigSource(Protocol):
    """The read side of the store, as seen by the reconciler."""

    def current_revision(self) -> int: ...

    def load_proxies(self, ids: Iterable[str] | None = None) -> list[Proxy]: ...

    def load_certificates(self, ids: Iterable[str]) -> list[Certificate]: ...

    def changed_proxy_ids(self, since_revision: int) -> tuple[int, set[str]]: ...

    def add_commit_listener(self, callback: Callable[[int], None]) -> None: ...
