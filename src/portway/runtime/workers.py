"""Data-plane worker processes, behind ``DataPlaneHandle``.

Each worker binds the same listeners with SO_REUSEPORT, so the kernel spreads new
connections across workers with no accept lock. Workers never read the store: the
control process sends them the first Snapshot's proxies whole and then only deltas
(changed proxies and removed ids) over a pipe, and each worker rebuilds its immutable
route table with ``with_changes``. Workers acknowledge each version they apply, which is
what the control process reports as the data plane's applied version.

The control process never waits on a worker. Its pipe ends are non-blocking; snapshots
are pickled once per version on a thread of their own, not on the loop; and a worker
that does not keep up is sent only the newest snapshot, as one delta merged from all it
missed. A worker that dies, or that takes nothing from its pipe for ``stall_timeout``
seconds, is started again and given the whole snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from portway.cache.store import Purge
from portway.dataplane.settings import DataPlaneSettings
from portway.model.backend_policy import BackendPolicy
from portway.model.listen_policy import ListenPolicy
from portway.router import Snapshot
from portway.runtime.access_logs import check_access_log
from portway.runtime.channel import PipeChannel
from portway.runtime.config import Listen, TlsListen
from portway.runtime.framing import encode
from portway.runtime.plane_handle import PlaneStats, Target
from portway.runtime.worker_messages import (
    Applied,
    HealthUpdate,
    Purged,
    PurgeRequest,
    Purges,
    SettingsUpdate,
    SnapshotPlan,
    TicketKeysUpdate,
)
from portway.runtime.worker_process import WorkerSpec, reuseport_socket, worker_main
from portway.tls.tickets import NO_KEYS, TicketKeys

log = logging.getLogger("portway.workers")

PURGE_TIMEOUT = 5.0  # seconds a purge waits for each worker's count
STALL_TIMEOUT = 20.0  # a 100 000-proxy full snapshot takes a worker a few seconds to apply


def encode_plan(plan: SnapshotPlan) -> bytes:
    # Pickling a big table allocates a temporary container per object, which triggers the
    # cyclic collector; a full collection scans the whole heap with the GIL held (about
    # 0.1 s for 20 000 routes on a quiet machine, several times that under load) and the
    # control loop waits. Every temporary is freed by reference counting once the frame
    # is built, so the collector is paused for that time and has nothing new after it.
    paused = gc.isenabled()
    gc.disable()
    try:
        return encode(plan.message())
    finally:
        if paused:
            gc.enable()


def _merge_plans(waiting: object, newer: object) -> object:
    assert isinstance(waiting, SnapshotPlan) and isinstance(newer, SnapshotPlan)
    return waiting.merged(newer)


class _Encoder:
    """Frames for the pool's pipes. A snapshot is megabytes of pickle on a big table, so
    it is encoded on one thread of its own, once per plan however many workers take it."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portway-encode")
        self._recent: dict[SnapshotPlan, asyncio.Future[bytes]] = {}

    def __call__(self, message: object) -> bytes | asyncio.Future[bytes]:
        if not isinstance(message, SnapshotPlan):
            return encode(message)
        frame = self._recent.get(message)
        if frame is None:
            loop = asyncio.get_running_loop()
            frame = loop.run_in_executor(self._executor, encode_plan, message)
            self._recent[message] = frame
            while len(self._recent) > 2:  # workers in step share the newest; laggards merge
                del self._recent[next(iter(self._recent))]
        return frame

    def close(self) -> None:
        self._recent.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)


class _Worker:
    """The control's end of one worker: its process, its pipe, what it last reported."""

    __slots__ = ("_on_applied", "applied", "channel", "process", "purges", "stats")

    def __init__(
        self,
        process: BaseProcess,
        conn: Connection,
        encoder: _Encoder,
        on_applied: Callable[[], None],
    ) -> None:
        self.process = process
        self.applied = 0
        self.stats: PlaneStats | None = None
        self._on_applied = on_applied
        # Purges sent and not yet answered, by request id.
        self.purges: dict[int, asyncio.Future[int]] = {}
        self.channel = PipeChannel(conn, self._on_message, encoder=encoder)

    def _on_message(self, message: object) -> None:
        if isinstance(message, Applied):
            self.applied = message.version
            self._on_applied()
        elif isinstance(message, PlaneStats):
            self.stats = message
        elif isinstance(message, Purged):
            for request_id, count in message.counts:
                waiter = self.purges.pop(request_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(count)

    def purge(self, request: PurgeRequest) -> asyncio.Future[int]:
        waiter = self.purges[request.id] = asyncio.get_running_loop().create_future()
        self.channel.send("purge", Purges((request,)), Purges.joined)
        return waiter


def _shared(settings: DataPlaneSettings, count: int) -> DataPlaneSettings:
    """``settings`` for one of ``count`` workers: each applies its share of every client
    rate limit (docs/limits.md: state is per worker)."""
    return replace(settings, rate_share=max(1, count))


class WorkerPool:
    """Starts, feeds, supervises and stops the worker processes."""

    def __init__(
        self,
        count: int,
        listen: Listen,
        settings: DataPlaneSettings,
        drain_timeout: float,
        *,
        tls: TlsListen | None = None,
        access_log: str | None = None,
        backend_policy: BackendPolicy | None = None,
        listen_policy: ListenPolicy | None = None,
        stall_timeout: float = STALL_TIMEOUT,
        supervise_interval: float = 0.5,
        nice: int = 0,
    ) -> None:
        self._spec = WorkerSpec(
            listen=listen,
            settings=_shared(settings, count),
            drain=drain_timeout,
            tls=tls,
            access_log=access_log,
            backend_policy=backend_policy or BackendPolicy(),
            listen_policy=listen_policy or ListenPolicy(),
            nice=nice,
        )
        self._count = count
        self._stall_timeout = stall_timeout
        self._interval = supervise_interval
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._snapshot: Snapshot | None = None
        self._full: SnapshotPlan | None = None  # the current snapshot whole, for new workers
        self._down: frozenset[Target] = frozenset()
        self._tickets: TicketKeys = NO_KEYS
        self._sent_at: dict[int, float] = {}
        self._encoder = _Encoder()
        self._supervisor: asyncio.Task[None] | None = None
        self.last_apply_seconds = 0.0  # published → applied by every worker
        # Called with the version every worker serves, each time a worker reports.
        self.on_applied: Callable[[int], None] | None = None
        self._purge_ids = 0

    # -- DataPlaneHandle ------------------------------------------------------

    async def start(self, snapshot: Snapshot) -> None:
        # Bind once here so that a bad address fails fast in the control process.
        reuseport_socket(self._spec.listen).close()
        if self._spec.tls is not None:
            reuseport_socket(self._spec.tls.listen).close()
        self._snapshot = snapshot
        self._workers = [self._spawn() for _ in range(self._count)]
        self._supervisor = asyncio.create_task(self._supervise(), name="workers")

    def publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        if snapshot is self._snapshot:
            return  # start() sent it whole to every worker
        previous, self._snapshot = self._snapshot, snapshot
        self._sent_at[snapshot.version] = time.monotonic()
        # The reconciler keeps the mapping object while certificates stay the same.
        moved = previous is None or previous.certificates is not snapshot.certificates
        plan = SnapshotPlan(snapshot, None if changed is None else frozenset(changed), moved)
        for worker in self._workers:
            worker.channel.send("snapshot", plan, _merge_plans)

    def set_health(self, down: frozenset[Target]) -> None:
        self._down = down
        for worker in self._workers:
            worker.channel.send("health", HealthUpdate(down=down))

    def set_ticket_keys(self, keys: TicketKeys) -> None:
        self._tickets = keys
        for worker in self._workers:
            worker.channel.send("tickets", TicketKeysUpdate(keys=keys))

    def reconfigure(self, settings: DataPlaneSettings, access_log: str | None) -> None:
        """Every worker switches to ``settings`` and reopens its access log; workers
        started later get them too."""
        check_access_log(access_log)  # here, so that a bad path changes nothing anywhere
        settings = _shared(settings, self._count)
        self._spec = replace(self._spec, settings=settings, access_log=access_log)
        update = SettingsUpdate(settings=settings, access_log=access_log)
        for worker in self._workers:
            worker.channel.send("settings", update)

    def stats(self) -> Sequence[PlaneStats]:
        return [w.stats for w in self._workers if w.stats is not None]

    async def purge(self, proxy_id: str, purge: Purge) -> int:
        """Every worker drops what ``purge`` matches (each has a cache of its own); the
        entries dropped, summed. A worker that does not answer in PURGE_TIMEOUT (it is
        stuck, and will be replaced with an empty cache) counts as none."""
        self._purge_ids += 1
        request = PurgeRequest(self._purge_ids, proxy_id, purge)
        waiters = [w.purge(request) for w in self._workers]
        done, _ = await asyncio.wait(waiters, timeout=PURGE_TIMEOUT) if waiters else (set(), set())
        for worker in self._workers:
            worker.purges.pop(request.id, None)
        return sum(w.result() for w in done)

    def is_ejected(self, target: Target) -> bool:
        return any(w.stats is not None and target in w.stats.ejected for w in self._workers)

    @property
    def applied_version(self) -> int:
        """The version every live worker has applied."""
        return min((w.applied for w in self._workers), default=0)

    async def close(self) -> None:
        """SIGTERM every worker (each drains) and wait for them to exit."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for worker in self._workers:
            with contextlib.suppress(ProcessLookupError):
                worker.process.terminate()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._spec.drain + 5
        for worker in self._workers:
            while worker.process.is_alive() and loop.time() < deadline:
                await asyncio.sleep(0.05)
            await _reap(worker.process)
            worker.channel.close()
        self._encoder.close()

    # -- the workers ----------------------------------------------------------

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main, args=(child, self._spec), name="portway-worker", daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent, self._encoder, self._note_applied)
        if len(self._tickets):  # first: it may not serve a handshake without them
            worker.channel.send("tickets", TicketKeysUpdate(keys=self._tickets))
        worker.channel.send("snapshot", self._full_plan())
        if self._down:
            worker.channel.send("health", HealthUpdate(down=self._down))

        return worker

    def _full_plan(self) -> SnapshotPlan:
        assert self._snapshot is not None
        if self._full is None or self._full.snapshot is not self._snapshot:
            self._full = SnapshotPlan(self._snapshot, None, True)
        return self._full

    def _note_applied(self) -> None:
        """Once every worker has applied a version, record how long that took."""
        done = self.applied_version
        for version in [v for v in self._sent_at if v <= done]:
            sent = self._sent_at.pop(version)
            if version == done:
                self.last_apply_seconds = time.monotonic() - sent
        if self.on_applied is not None:
            self.on_applied(done)

    async def _supervise(self) -> None:
        """Restart workers that died or stopped reading their pipe, until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            for i, worker in enumerate(self._workers):
                process = worker.process
                if not process.is_alive():
                    log.warning(
                        "worker pid %s exited (%s); restarting", process.pid, process.exitcode
                    )
                elif worker.channel.blocked_for() > self._stall_timeout:
                    log.warning(
                        "worker pid %s has read nothing from its pipe for %.0fs; restarting",
                        process.pid,
                        worker.channel.blocked_for(),
                    )
                else:
                    continue
                worker.channel.close()
                await _reap(process)
                self._workers[i] = self._spawn()


async def _reap(process: BaseProcess) -> None:
    """SIGKILL ``process`` if it still runs (that ends even a stopped one) and wait for
    it to exit without blocking the loop."""
    if process.is_alive():
        process.kill()
        while process.is_alive():
            await asyncio.sleep(0.01)
    process.join(0)
