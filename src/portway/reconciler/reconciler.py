"""The reconciler loop: watch the store's revision, publish consistent Snapshots.

Wake-ups come from the store's commit listener (same process: immediate) and from a
poll (other nodes writing to a shared PostgreSQL; also a safety net). Each step reads
only the proxies changed since the last published version, so a change costs the same
on a table of ten proxies or a hundred thousand. If a step fails, the last good snapshot
stays in force and the next wake-up retries from the same version.

A stored proxy that breaks a rule is left out of the snapshot and kept in ``disabled``
(served by the API and the metrics), logged once when it becomes disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping

from portway.model import Certificate
from portway.model.quota import UNLIMITED, CacheLimits
from portway.observability.failures import Outage
from portway.reconciler.builder import (
    Disabled,
    certificate_ids,
    certificate_plan,
    disabled_after,
    full_snapshot,
    next_snapshot,
    screen,
)
from portway.reconciler.digest import as_text, digest_of, next_digest
from portway.reconciler.store_reader import StoreReader
from portway.router import Snapshot

log = logging.getLogger("portway.reconciler")

_DIGESTS_KEPT = 16
Publisher = Callable[[Snapshot, set[str] | None], None]


class Reconciler:
    """Turns store revisions into Snapshots and hands each to ``publish``.

    ``publish(snapshot, changed)`` receives the ids of the proxies that changed, or None
    for a full snapshot, so that publishers (worker pipes, drivers) can send deltas.
    """

    def __init__(
        self,
        store: StoreReader,
        publish: Publisher,
        *,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        cache_quota_default: int = UNLIMITED,
    ) -> None:
        self._store = store
        self._cache_quota_default = cache_quota_default  # --quota-cache-bytes
        self._publish = publish
        self._poll_interval = poll_interval
        self._clock = clock
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.snapshot: Snapshot | None = None
        # Proxies left out of the current snapshot, by id; replaced whole, never mutated.
        self.disabled: Mapping[str, Disabled] = {}
        # What ``disabled`` becomes when the snapshot built with it is committed.
        self._staged: tuple[Snapshot, Mapping[str, Disabled], int, str | None] | None = None
        # The store's fingerprint of the write the current snapshot's revision names: a
        # different one (or none) later means that history was lost (``_diverged``).
        self._mark: str | None = None
        # Route digests of the last few snapshots, by version: what a node reports is
        # the digest of the version its data plane has applied, which may lag.
        self._digests: dict[int, int] = {}
        self.last_build_seconds = 0.0
        # commit seen → snapshot published, for the oldest change in the last publish
        self.last_publish_seconds = 0.0
        self._pending_since: float | None = None
        # The newest store revision heard of (commits, notifications, reads): /healthz
        # says the node is behind while the snapshot is older than this.
        self.newest_revision = 0

    def build_initial(self) -> Snapshot:
        """Load everything and publish the first snapshot (blocking; call at start-up)."""
        snap = self.load_initial()
        self.commit(snap, None)
        return snap

    def load_initial(self) -> Snapshot:
        """The first snapshot, built from the whole store but not yet published."""
        snap = self._load_all()
        self.snapshot = snap
        return snap

    def _load_all(self) -> Snapshot:
        started = time.perf_counter()
        version = self._store.current_revision()
        self._heard(version)
        proxies, rejected = screen(self._store.load_proxies())
        certs = self._load_certificates(certificate_ids(proxies))
        snap = full_snapshot(version, proxies, self._clock(), certs)
        snap = dataclasses.replace(snap, cache_limits=self._cache_limits(snap.cache_limits))
        mark = self._store.revision_marks([version]).get(version)
        self._staged = (snap, rejected, digest_of(snap.routes), mark)
        self.last_build_seconds = time.perf_counter() - started
        return snap

    def compute(self) -> tuple[Snapshot, set[str] | None] | None:
        """Read what changed since the last snapshot and build the next one, without
        publishing it (blocking store reads: run it off the event loop). ``None`` for
        the changed ids: the whole table was loaded again."""
        previous = self.snapshot
        assert previous is not None, "build_initial() first"
        started = time.perf_counter()
        version, changed = self._store.changed_proxy_ids(previous.version)
        marks = self._store.revision_marks([previous.version, version])
        if version < previous.version or marks.get(previous.version) != self._mark:
            return self._resync(previous.version), None
        self._heard(version)
        if version <= previous.version:
            return None
        current, rejected = screen(self._store.load_proxies(changed) if changed else [])
        # A rejected proxy is in ``changed`` but not in ``current``: it leaves the table.
        snap = next_snapshot(previous, version, changed, current, self._clock())
        plan = certificate_plan(previous, snap.routes, changed, current)
        if plan is not None:
            kept, missing = plan
            certs = {**kept, **self._load_certificates(missing)}
            snap = dataclasses.replace(snap, certificates=certs)
        limits = self._cache_limits(previous.cache_limits)
        if limits is not snap.cache_limits:
            snap = dataclasses.replace(snap, cache_limits=limits)
        digest = next_digest(self._digests[previous.version], previous.routes, snap.routes, changed)
        disabled = disabled_after(self.disabled, changed, rejected)
        self._staged = (snap, disabled, digest, marks.get(version))
        self.last_build_seconds = time.perf_counter() - started
        return snap, changed

    def _resync(self, applied: int) -> Snapshot:
        """The store no longer holds revision ``applied`` as this node applied it: a
        failover to a replica that had not replayed the last commits. Those commits are
        gone, and new writes may reuse their numbers, so no delta from here is right.
        Commit an empty write above every revision this node has seen (snapshot
        versions only grow, and every other node that applied the lost ones does the
        same), then load the whole store again."""
        seen = max(applied, self.newest_revision)
        log.warning(
            "the store no longer holds revision %d as this node applied it (commits lost"
            " in a failover?): loading the whole store again above revision %d",
            applied,
            seen,
        )
        self._store.resync_past(seen, "portway:resync")
        snap = self._load_all()
        # Forget revisions heard of from the lost history: readiness compares with it.
        self.newest_revision = snap.version
        return snap

    def _cache_limits(self, previous: CacheLimits) -> CacheLimits:
        """The cache quotas in force now (a quota change moves the revision without
        touching a proxy, so they are read on every step: one small query); the
        previous object when they did not change."""
        limits = CacheLimits(default=self._cache_quota_default, own=self._store.cache_quotas())
        return previous if limits == previous else limits

    def _load_certificates(self, ids: set[str]) -> dict[str, Certificate]:
        if not ids:
            return {}
        return {c.id: c for c in self._store.load_certificates(ids)}

    def commit(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        """Make ``snapshot`` current and publish it (on the data plane's thread)."""
        self.snapshot = snapshot
        staged, self._staged = self._staged, None
        if staged is not None and staged[0] is snapshot:
            self._set_disabled(staged[1])
            self._digests[snapshot.version] = staged[2]
            self._mark = staged[3]
            while len(self._digests) > _DIGESTS_KEPT:
                del self._digests[next(iter(self._digests))]
        elif snapshot.version not in self._digests:  # a snapshot made elsewhere (tests)
            self._digests[snapshot.version] = digest_of(snapshot.routes)
        self._publish(snapshot, changed)
        since, self._pending_since = self._pending_since, None
        if since is not None:
            self.last_publish_seconds = time.monotonic() - since

    def digest(self, version: int) -> str | None:
        """The route digest of snapshot ``version``, if it is one of the last few."""
        digest = self._digests.get(version)
        return None if digest is None else as_text(digest)

    def _set_disabled(self, disabled: Mapping[str, Disabled]) -> None:
        """Make ``disabled`` current; log each proxy once when it becomes disabled."""
        before, self.disabled = self.disabled, disabled
        if disabled is before:
            return
        for proxy_id, entry in disabled.items():
            if before.get(proxy_id) != entry:
                # repr: the stored strings are what broke a rule, CR/LF included.
                log.warning(
                    "proxy %s disabled (project %r, hostname %r, path prefix %r), not served: %s",
                    proxy_id,
                    entry.project,
                    entry.hostname,
                    entry.path_prefix,
                    "; ".join(f"{p.field}: {p.message}" for p in entry.problems),
                )
        for proxy_id in before.keys() - disabled.keys():
            log.info("proxy %s is no longer disabled", proxy_id)

    def step(self) -> Snapshot | None:
        """compute() and commit() in one call; None if nothing changed."""
        if self.snapshot is None:
            return self.build_initial()
        result = self.compute()
        if result is None:
            return None
        self.commit(*result)
        return result[0]

    @property
    def pending_since(self) -> float | None:
        """When this node heard of the oldest change not yet published (monotonic)."""
        return self._pending_since

    def _heard(self, revision: int) -> None:
        # Threads race here only to raise it; a lost race is repaired by the next step.
        if revision > self.newest_revision:
            self.newest_revision = revision

    def notify(self, revision: int) -> None:
        """Commit listener: safe to call from any thread."""
        self._heard(revision)
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def run(self) -> None:
        """Run until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._store.add_commit_listener(self.notify)
        outage = Outage(log, "snapshot build (the last good snapshot keeps serving)")
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()
            try:
                # The store is synchronous; keep its reads off the data plane's loop, but
                # publish on the loop so the data plane is only ever touched from it.
                result = await asyncio.to_thread(self.compute)
            except Exception as exc:  # keep the last good snapshot, retry on the next wake-up
                outage.failed(exc)
                continue
            outage.worked()
            if result is not None:
                self.commit(*result)

    def _version(self) -> int | None:
        return None if self.snapshot is None else self.snapshot.version
