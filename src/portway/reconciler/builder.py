"""Pure snapshot construction: the previous snapshot plus what changed gives the next one.

Every proxy read from the store is screened first with the service's own rules
(``validation.Screen``): one that breaks any of them, such as a row stored before a rule
existed, is left out of the snapshot (its hostname answers 404, nothing of it reaches the
wire) and listed as ``Disabled`` with its problems. The rest are served as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from portway.model import Certificate, Proxy
from portway.router import RouteTable, Snapshot
from portway.service.validation import Problem, Screen


@dataclass(frozen=True, slots=True)
class Disabled:
    """A stored proxy that snapshots leave out, and why."""

    project: str
    hostname: str
    path_prefix: str
    problems: tuple[Problem, ...]


def screen(proxies: Iterable[Proxy]) -> tuple[list[Proxy], dict[str, Disabled]]:
    """``proxies`` split into those that may be served and, by id, those that may not."""
    checker = Screen()
    good: list[Proxy] = []
    bad: dict[str, Disabled] = {}
    for proxy in proxies:
        found = checker.problems(proxy)
        if found:
            bad[proxy.id] = Disabled(proxy.project, proxy.hostname, proxy.path_prefix, found)
        else:
            good.append(proxy)
    return good, bad


def disabled_after(
    previous: Mapping[str, Disabled], changed_ids: set[str], rejected: Mapping[str, Disabled]
) -> Mapping[str, Disabled]:
    """The disabled proxies once the changes in ``changed_ids`` apply: a changed proxy is
    disabled exactly when it was ``rejected`` now (fixed and deleted ones drop out)."""
    if not previous.keys() & changed_ids and not rejected:
        return previous
    kept = {k: v for k, v in previous.items() if k not in changed_ids}
    kept.update(rejected)
    return kept


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
