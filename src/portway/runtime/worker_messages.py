"""Everything the control process and a worker say to each other over their pipe.

control → worker: ``FullSnapshot`` (replace everything), ``SnapshotDelta`` (upserts and
removals), ``HealthUpdate`` (the active checks' verdicts), ``SettingsUpdate`` (SIGHUP),
``Purges`` (cache purges, in order behind the snapshots sent before them),
``TicketKeysUpdate`` (the tier's TLS session-ticket keys, whole; a newer one replaces one
not yet sent).
worker → control: ``Applied`` (a snapshot version is being served), ``PlaneStats`` (the
worker's figures, pushed every second so that ``/metrics`` never waits on a worker),
``Purged`` (how many entries each purge dropped in that worker).

A worker that falls behind is sent one ``SnapshotPlan`` merged from all the snapshots it
missed (``SnapshotPlan.merged``), never each of them in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from portway.cache.store import Purge
from portway.dataplane.settings import DataPlaneSettings
from portway.model import Certificate, Proxy
from portway.model.quota import CacheLimits
from portway.router import RouteTable, Snapshot
from portway.runtime.plane_handle import PlaneStats, Target
from portway.tls.tickets import TicketKeys


@dataclass(frozen=True, slots=True, kw_only=True)
class FullSnapshot:
    version: int
    proxies: tuple[Proxy, ...]
    certificates: Mapping[str, Certificate]
    cache_limits: CacheLimits


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotDelta:
    version: int
    upserts: tuple[Proxy, ...]
    removed: tuple[str, ...]
    certificates: Mapping[str, Certificate] | None  # the whole map when it changed, else None
    cache_limits: CacheLimits  # always sent: a default and a few overrides


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthUpdate:
    down: frozenset[Target]


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsUpdate:
    settings: DataPlaneSettings
    access_log: str | None  # a path, "-" for standard output, None for none


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketKeysUpdate:
    keys: TicketKeys  # secrets: this travels only over the pipe to the worker


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    version: int


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    id: int  # the control's number for it, echoed in ``Purged``
    proxy_id: str
    purge: Purge


@dataclass(frozen=True, slots=True)
class Purges:
    """Purges for one worker; several not yet sent travel as one (``joined``): unlike a
    snapshot, no purge may replace another."""

    requests: tuple[PurgeRequest, ...]

    @staticmethod
    def joined(waiting: object, newer: object) -> object:
        assert isinstance(waiting, Purges) and isinstance(newer, Purges)
        return Purges(waiting.requests + newer.requests)


@dataclass(frozen=True, slots=True)
class Purged:
    """(request id, entries dropped) for each purge of one ``Purges``."""

    counts: tuple[tuple[int, int], ...]

    @staticmethod
    def joined(waiting: object, newer: object) -> object:
        assert isinstance(waiting, Purged) and isinstance(newer, Purged)
        return Purged(waiting.counts + newer.counts)


ToWorker = FullSnapshot | SnapshotDelta | HealthUpdate | SettingsUpdate | Purges | TicketKeysUpdate
FromWorker = Applied | PlaneStats | Purged


def full_message(snapshot: Snapshot) -> FullSnapshot:
    return FullSnapshot(
        version=snapshot.version,
        proxies=tuple(r.proxy for r in snapshot.routes.routes()),
        certificates=dict(snapshot.certificates),
        cache_limits=snapshot.cache_limits,
    )


def delta_message(
    snapshot: Snapshot, changed: set[str] | frozenset[str], *, certificates_changed: bool = False
) -> SnapshotDelta:
    """The proxies of ``changed`` as they are in ``snapshot``: present ones are upserts,
    absent ones were removed."""
    upserts = []
    removed = []
    for proxy_id in changed:
        route = snapshot.routes.get(proxy_id)
        if route is None:
            removed.append(proxy_id)
        else:
            upserts.append(route.proxy)
    return SnapshotDelta(
        version=snapshot.version,
        upserts=tuple(upserts),
        removed=tuple(removed),
        certificates=dict(snapshot.certificates) if certificates_changed else None,
        cache_limits=snapshot.cache_limits,
    )


def apply_message(current: Snapshot, message: FullSnapshot | SnapshotDelta) -> Snapshot:
    """Pure: the worker's next snapshot after ``message``."""
    if isinstance(message, FullSnapshot):
        return Snapshot(
            version=message.version,
            routes=RouteTable.build(message.proxies),
            certificates=message.certificates,
            cache_limits=message.cache_limits,
        )
    routes = current.routes.with_changes(upserts=message.upserts, removed=message.removed)
    certs = message.certificates
    return Snapshot(
        version=message.version,
        routes=routes,
        certificates=current.certificates if certs is None else certs,
        cache_limits=message.cache_limits,
    )


@dataclass(frozen=True, slots=True, eq=False)
class SnapshotPlan:
    """A snapshot still to send to a worker, and how: whole (``changed`` None) or as the
    delta of ``changed`` from what the worker was sent before. Compared by identity, so
    workers in step share one plan and one encoding of it."""

    snapshot: Snapshot
    changed: frozenset[str] | None
    certificates_changed: bool = False

    def merged(self, newer: SnapshotPlan) -> SnapshotPlan:
        """One plan that takes a worker from before ``self`` to after ``newer``: the
        newest snapshot, with every id either of them changed."""
        changed = None
        if self.changed is not None and newer.changed is not None:
            changed = self.changed | newer.changed
        moved = self.certificates_changed or newer.certificates_changed
        return SnapshotPlan(newer.snapshot, changed, moved)

    def message(self) -> FullSnapshot | SnapshotDelta:
        if self.changed is None:
            return full_message(self.snapshot)
        return delta_message(
            self.snapshot, self.changed, certificates_changed=self.certificates_changed
        )
