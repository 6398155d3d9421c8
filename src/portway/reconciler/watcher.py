"""The reconciler loop: watch the store's revision, publish consistent Snapshots.

Wake-ups come from the store's commit listener (same process: immediate) and from a
poll (other nodes writing to a shared PostgreSQL; also a safety net). Each step reads
only the proxies changed since the last published version, so a change costs the same
on a table of ten proxies or a hundred thousand. If a step fails, the last good snapshot
stays in force and the next wake-up retries from the same version.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

from portway.model import Certificate
from portway.reconciler.builder import (
    certificate_ids,
    certificate_plan,
    full_snapshot,
    next_snapshot,
)
from portway.reconciler.source import ConfigSource
from portway.router import Snapshot

log = logging.getLogger("portway.reconciler")

Publisher = Callable[[Snapshot, set[str] | None], None]


class Reconciler:
    """Turns store revisions into Snapshots and hands each to ``publish``.

    ``publish(snapshot, changed)`` receives the ids of the proxies that changed, or None
    for a full snapshot, so that publishers (worker pipes, drivers) can send deltas.
    """

    def __init__(
        self,
        source: ConfigSource,
        publish: Publisher,
        *,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._publish = publish
        self._poll_interval = poll_interval
        self._clock = clock
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.snapshot: Snapshot | None = None
        self.last_build_seconds = 0.0
        # commit seen → snapshot published, for the oldest change in the last publish
        self.last_publish_seconds = 0.0
        self._pending_since: float | None = None

    def build_initial(self) -> Snapshot:
        """Load everything and publish the first snapshot (blocking; call at start-up)."""
        snap = self.load_initial()
        self.commit(snap, None)
        return snap

    def load_initial(self) -> Snapshot:
        """The first snapshot, built from the whole store but not yet published."""
        started = time.perf_counter()
        version = self._source.current_revision()
        proxies = self._source.load_proxies()
        certs = self._load_certificates(certificate_ids(proxies))
        snap = full_snapshot(version, proxies, self._clock(), certs)
        self.snapshot = snap
        self.last_build_seconds = time.perf_counter() - started
        return snap

    def compute(self) -> tuple[Snapshot, set[str]] | None:
        """Read what changed since the last snapshot and build the next one, without
        publishing it (blocking store reads: run it off the event loop)."""
        previous = self.snapshot
        assert previous is not None, "build_initial() first"
        started = time.perf_counter()
        version, changed = self._source.changed_proxy_ids(previous.version)
        if version <= previous.version:
            return None
        current = self._source.load_proxies(changed) if changed else []
        snap = next_snapshot(previous, version, changed, current, self._clock())
        plan = certificate_plan(previous, snap.routes, changed, current)
        if plan is not None:
            kept, missing = plan
            certs = {**kept, **self._load_certificates(missing)}
            snap = dataclasses.replace(snap, certificates=certs)
        self.last_build_seconds = time.perf_counter() - started
        return snap, changed

    def _load_certificates(self, ids: set[str]) -> dict[str, Certificate]:
        if not ids:
            return {}
        return {c.id: c for c in self._source.load_certificates(ids)}

    def commit(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        """Make ``snapshot`` current and publish it (on the data plane's thread)."""
        self.snapshot = snapshot
        self._publish(snapshot, changed)
        since, self._pending_since = self._pending_since, None
        if since is not None:
            self.last_publish_seconds = time.monotonic() - since

    def step(self) -> Snapshot | None:
        """compute() and commit() in one call; None if nothing changed."""
        if self.snapshot is None:
            return self.build_initial()
        result = self.compute()
        if result is None:
            return None
        self.commit(*result)
        return result[0]

    def notify(self, revision: int) -> None:
        """Commit listener: safe to call from any thread."""
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def run(self) -> None:
        """Run until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._source.add_commit_listener(self.notify)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()
            try:
                # The store is synchronous; keep its reads off the data plane's loop, but
                # publish on the loop so the data plane is only ever touched from it.
                result = await asyncio.to_thread(self.compute)
            except Exception:  # keep the last good snapshot, retry on the next wake-up
                log.exception("snapshot build failed; keeping version %s", self._version())
                continue
            if result is not None:
                self.commit(*result)

    def _version(self) -> int | None:
        return None if self.snapshot is None else self.snapshot.version
