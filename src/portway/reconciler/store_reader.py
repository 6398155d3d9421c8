"""What the reconciler needs from a store: revisions, proxies, certificates, the projects'
own cache quotas, a wake-up.

(Not a "source": in Portway a source is an outside feed of configuration, such as the
Toolforge registrations or OpenShift routes in ``portway.sources``, which writes to the
store through the service like any other client.)"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from portway.model import Certificate, Proxy


class StoreReader(Protocol):
    """The read side of the store, as seen by the reconciler."""

    def current_revision(self) -> int: ...

    def load_proxies(self, ids: Iterable[str] | None = None) -> list[Proxy]: ...

    def load_certificates(self, ids: Iterable[str]) -> list[Certificate]: ...

    def changed_proxy_ids(self, since_revision: int) -> tuple[int, set[str]]: ...

    def revision_marks(self, revisions: Iterable[int]) -> dict[int, str]: ...

    def resync_past(self, seen: int, actor: str) -> int: ...

    def cache_quotas(self) -> dict[str, int]: ...

    def add_commit_listener(self, callback: Callable[[int], None]) -> None: ...
