"""Pure snapshot construction: the previous snapshot plus what changed gives the next one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from portway.model import Certificate, Proxy
from portway.router import RouteTable, Snapshot


def full_snapshot(
    version: int,
    proxies: Iterable[Proxy],
    now: float,
    certificates: Mapping[str, Certificate] | None = None,
) -> Snapshot:
    return Snapshot(
        version=version,
        routes=RouteTable.build(proxies),
        built_at=now,
        certificates={} if certificates is None else certificates,
    )


def next_snapshot(
    previous: Snapshot,
    version: int,
    changed_ids: set[str],
    current: Iterable[Proxy],
    now: float,
    certificates: Mapping[str, Certificate] | None = None,
) -> Snapshot:
    """Apply ``current`` (the changed proxies that still exist) to ``previous``.

    Ids in ``changed_ids`` that are absent from ``current`` were deleted. Without
    ``certificates`` the previous snapshot's mapping is kept as is.
    """
    upserts = list(current)
    present = {p.id for p in upserts}
    routes = previous.routes.with_changes(upserts=upserts, removed=changed_ids - present)
    certs = previous.certificates if certificates is None else certificates
    return Snapshot(version=version, routes=routes, built_at=now, certificates=certs)


def certificate_ids(proxies: Iterable[Proxy]) -> set[str]:
    """The certificates these proxies attach."""
    return {p.tls.certificate for p in proxies if p.tls.certificate}


def certificate_plan(
    previous: Snapshot, routes: RouteTable, changed_ids: set[str], upserts: Iterable[Proxy]
) -> tuple[Mapping[str, Certificate], set[str]] | None:
    """What the next snapshot's certificates are: None when they stay as they were,
    else the ones to keep and the ids still to load from the store.

    The whole table is scanned only when a changed proxy attached a certificate before or
    after the change, so changes to plain proxies stay independent of the table's size.
    """
    before = (previous.routes.get(i) for i in changed_ids)
    touched = certificate_ids(r.proxy for r in before if r is not None)
    touched |= certificate_ids(upserts)
    if not touched:
        return None
    wanted = certificate_ids(r.proxy for r in routes.routes())
    old = previous.certificates
    if wanted == set(old):
        return None
    kept = {k: v for k, v in old.items() if k in wanted}
    return kept, wanted - set(kept)
