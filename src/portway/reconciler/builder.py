"""Pure snapshot construction: the previous snapshot plus what changed gives the next one."""

from __future__ import annotations

from collections.abc import Iterable

from portway.model import Proxy
from portway.router import RouteTable, Snapshot


def full_snapshot(version: int, proxies: Iterable[Proxy], now: float) -> Snapshot:
    return Snapshot(version=version, routes=RouteTable.build(proxies), built_at=now)


def next_snapshot(
    previous: Snapshot,
    version: int,
    changed_ids: set[str],
    current: Iterable[Proxy],
    now: float,
) -> Snapshot:
    """Apply ``current`` (the changed proxies that still exist) to ``previous``.

    Ids in ``changed_ids`` that are absent from ``current`` were deleted.
    """
    upserts = list(current)
    present = {p.id for p in upserts}
    routes = previous.routes.with_changes(upserts=upserts, removed=changed_ids - present)
    return Snapshot(version=version, routes=routes, built_at=now)
