"""Data-plane worker processes.

Each worker binds the same listeners with SO_REUSEPORT, so the kernel spreads new
connections across workers with no accept lock. Workers never read the store: the
control process sends them the first Snapshot's proxies whole and then only deltas
(changed proxies and removed ids) over a pipe, and each worker rebuilds its immutable
route table with ``with_changes``. A worker that dies is started again and given a full
snapshot. Workers acknowledge each version they apply, which is what the control process
reports as the data plane's applied version.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from portway.dataplane.server import DataPlane
from portway.dataplane.settings import DataPlaneSettings
from portway.model.backend_policy import BackendPolicy
from portway.observability.access_log import AccessLog
from portway.router import RouteTable, Snapshot
from portway.runtime.config import Listen, TlsListen

log = logging.getLogger("portway.workers")

# Messages on the pipe, control → worker:
#   ("full", version, [Proxy, ...], {id: Certificate})   replace everything
#   ("delta", version, [Proxy, ...], [id, ...], certs)   upserts and removals; certs is
#       the whole {id: Certificate} map when it changed, else None (the usual case)
#   ("health", frozenset[(proxy id, backend id)])  backends that active checks found down
#   ("settings", DataPlaneSettings, access log target)  SIGHUP: switch to these, reopen
#       the access log
# worker → control:
#   ("applied", version)
#   ("stats", metrics export, open connections, passively ejected backends)  every second
Message = tuple[Any, ...]


def reuseport_socket(listen: Listen) -> socket.socket:
    """A listening socket that other workers can bind too."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((listen.host, listen.port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def full_message(snapshot: Snapshot) -> Message:
    proxies = [r.proxy for r in snapshot.routes.routes()]
    return ("full", snapshot.version, proxies, dict(snapshot.certificates))


def delta_message(
    snapshot: Snapshot, changed: set[str], *, certificates_changed: bool = False
) -> Message:
    upserts = []
    removed = []
    for proxy_id in changed:
        route = snapshot.routes.get(proxy_id)
        if route is None:
            removed.append(proxy_id)
        else:
            upserts.append(route.proxy)
    certs = dict(snapshot.certificates) if certificates_changed else None
    return ("delta", snapshot.version, upserts, removed, certs)


STATS_INTERVAL = 1.0


def settle_heap() -> None:
    """Move what a full snapshot left on the heap out of the cyclic GC's reach.

    A 100 000-proxy snapshot is about a million long-lived objects; without this, the
    first full collections after start-up walk all of them (300 ms pauses measured under
    load). Collect first, so that no cyclic garbage is frozen with them. Deltas are small
    and left to the normal collector.
    """
    gc.collect()
    gc.freeze()


def watch_pipe(
    loop: asyncio.AbstractEventLoop, conn: Connection, callback: Callable[[], None]
) -> None:
    """Call ``callback`` whenever ``conn`` has a message to read.

    The event loop switches a watched descriptor to non-blocking mode, but Connection
    reads and writes whole pickled messages with plain blocking calls: a snapshot of
    100 000 proxies is several megabytes, and on a non-blocking pipe it fails half way
    with EAGAIN. So the descriptor goes back to blocking once it is watched; the peer
    always writes whole messages, so a read never waits long.
    """
    loop.add_reader(conn.fileno(), callback)
    os.set_blocking(conn.fileno(), True)


def apply_message(current: Snapshot, message: Message) -> Snapshot:
    """Pure: the worker's next snapshot after a "full" or "delta" ``message``."""
    if message[0] == "full":
        certs = message[3] if len(message) > 3 else {}
        return Snapshot(version=message[1], routes=RouteTable.build(message[2]), certificates=certs)
    routes = current.routes.with_changes(upserts=message[2], removed=message[3])
    certs = message[4] if len(message) > 4 and message[4] is not None else None
    return Snapshot(
        version=message[1],
        routes=routes,
        certificates=current.certificates if certs is None else certs,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerSpec:
    """Everything a worker process is started with (pickled to it once)."""

    listen: Listen
    settings: DataPlaneSettings
    drain: float
    tls: TlsListen | None = None
    access_log: str | None = None  # path, "-" for stdout, None for none
    backend_policy: BackendPolicy = field(default_factory=BackendPolicy)


def open_access_log(target: str | None) -> AccessLog | None:
    """The access log for ``--access-log``. Each process appends with O_APPEND, and
    AccessLog writes whole batches of lines in one write, so workers' lines never mix."""
    if target is None:
        return None
    if target == "-":
        return AccessLog(sys.stdout)
    return AccessLog(open(target, "a", encoding="utf-8", buffering=1 << 16))


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process."""
    import uvloop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    uvloop.run(_worker(conn, spec))


async def _worker(conn: Connection, spec: WorkerSpec) -> None:
    loop = asyncio.get_running_loop()
    listen, tls = spec.listen, spec.tls
    access_log = open_access_log(spec.access_log)
    plane = DataPlane(spec.settings, access_log=access_log, backend_policy=spec.backend_policy)
    stop = asyncio.Event()
    state = {"snapshot": Snapshot(version=0)}

    def on_message() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError) as exc:  # the control process is gone: shut down
            log.warning("control pipe closed (%r); worker shutting down", exc)
            loop.remove_reader(conn.fileno())
            stop.set()
            return
        if message[0] == "health":
            plane.set_health(message[1])
            return
        if message[0] == "settings":
            reconfigure(plane, message[1], message[2])
            return
        snapshot = apply_message(state["snapshot"], message)
        state["snapshot"] = snapshot
        plane.apply(snapshot)
        if message[0] == "full":
            settle_heap()
        with contextlib.suppress(OSError):
            conn.send(("applied", snapshot.version))

    def send_stats() -> None:
        # Pushed, not polled: /metrics in the control process never waits on a worker.
        stats = ("stats", plane.metrics.export(), plane.open_connections, plane.ejected())
        with contextlib.suppress(OSError):
            conn.send(stats)
        if not stop.is_set():
            loop.call_later(STATS_INTERVAL, send_stats)

    watch_pipe(loop, conn, on_message)
    loop.call_later(STATS_INTERVAL, send_stats)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a HUP to the process group is for the control
    await plane.listen_http(listen.host, listen.port, sock=reuseport_socket(listen))
    if tls is not None:
        plane.tls.load_default(tls.chain, tls.key)
        https = tls.listen
        await plane.listen_https(https.host, https.port, sock=reuseport_socket(https))
    await stop.wait()
    await plane.close(spec.drain)
    if plane.access_log is not None:  # a "settings" message may have reopened it
        plane.access_log.flush()


def reconfigure(plane: DataPlane, settings: DataPlaneSettings, access_log: str | None) -> None:
    """A worker's part of SIGHUP; a log it cannot open leaves the old one in place."""
    try:
        fresh = open_access_log(access_log)
    except OSError as exc:
        log.error("cannot open the access log: %s; keeping the old one", exc)
        fresh = plane.access_log
    plane.reconfigure(settings)
    old, plane.access_log = plane.access_log, fresh
    if old is not None and old is not fresh:
        old.close()


@dataclass(slots=True)
class _Worker:
    process: BaseProcess
    conn: Connection
    applied: int = 0
    alive: bool = field(default=True)
    stats: tuple[Any, ...] | None = None


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
    ) -> None:
        self._spec = WorkerSpec(
            listen=listen,
            settings=settings,
            drain=drain_timeout,
            tls=tls,
            access_log=access_log,
            backend_policy=backend_policy or BackendPolicy(),
        )
        self._count = count
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._snapshot: Snapshot | None = None
        self._down: frozenset[tuple[str, str]] = frozenset()
        self._sent_at: dict[int, float] = {}
        self.last_apply_seconds = 0.0  # published → applied by every worker
        self._stopping = False

    @property
    def applied_version(self) -> int:
        """The version every live worker has applied."""
        return min((w.applied for w in self._workers), default=0)

    def _note_applied(self) -> None:
        """Once every worker has applied a version, record how long that took."""
        done = self.applied_version
        for version in [v for v in self._sent_at if v <= done]:
            sent = self._sent_at.pop(version)
            if version == done:
                self.last_apply_seconds = time.monotonic() - sent

    def set_health(self, down: frozenset[tuple[str, str]]) -> None:
        """Tell every worker which backends active checks found down."""
        self._down = down
        for worker in self._workers:
            self._send(worker, ("health", down))

    def reconfigure(self, settings: DataPlaneSettings, access_log: str | None) -> None:
        """SIGHUP: every worker switches to ``settings`` and reopens its access log;
        workers started later get them too."""
        self._spec = replace(self._spec, settings=settings, access_log=access_log)
        for worker in self._workers:
            self._send(worker, ("settings", settings, access_log))

    def stats(self) -> list[tuple[Any, ...]]:
        """The latest stats each live worker pushed: (metrics export, open connections,
        ejected backends)."""
        return [w.stats[1:] for w in self._workers if w.stats is not None]

    def start(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        # Bind once here so that a bad address fails fast in the control process.
        reuseport_socket(self._spec.listen).close()
        if self._spec.tls is not None:
            reuseport_socket(self._spec.tls.listen).close()
        for _ in range(self._count):
            self._workers.append(self._spawn(snapshot))

    def publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        if snapshot is self._snapshot:
            return  # start() already sent it whole to every worker
        previous, self._snapshot = self._snapshot, snapshot
        self._sent_at[snapshot.version] = time.monotonic()
        if changed is None:
            message = full_message(snapshot)
        else:
            # The reconciler keeps the mapping object while certificates stay the same.
            moved = previous is None or previous.certificates is not snapshot.certificates
            message = delta_message(snapshot, changed, certificates_changed=moved)
        for worker in self._workers:
            self._send(worker, message)

    async def supervise(self, interval: float = 0.5) -> None:
        """Restart workers that died, until cancelled."""
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            self._watch_acks(loop, worker)
        while not self._stopping:
            await asyncio.sleep(interval)
            for i, worker in enumerate(self._workers):
                if not worker.process.is_alive() and not self._stopping and self._snapshot:
                    log.warning(
                        "worker pid %s exited (%s); restarting",
                        worker.process.pid,
                        worker.process.exitcode,
                    )
                    with contextlib.suppress(ValueError, OSError):
                        loop.remove_reader(worker.conn.fileno())
                    worker.conn.close()
                    fresh = self._spawn(self._snapshot)
                    self._workers[i] = fresh
                    self._watch_acks(loop, fresh)

    async def stop(self) -> None:
        """SIGTERM every worker (each drains) and wait for them to exit."""
        self._stopping = True
        for worker in self._workers:
            if worker.process.is_alive() and worker.process.pid:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.terminate()
        deadline = asyncio.get_running_loop().time() + self._spec.drain + 5
        for worker in self._workers:
            while worker.process.is_alive() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(timeout=1)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def _spawn(self, snapshot: Snapshot) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main,
            args=(child, self._spec),
            name="portway-worker",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(process=process, conn=parent)
        self._send(worker, full_message(snapshot))
        if self._down:
            self._send(worker, ("health", self._down))
        return worker

    def _send(self, worker: _Worker, message: Message) -> None:
        try:
            worker.conn.send(message)
        except OSError:  # a dead worker; supervise() will replace it
            worker.alive = False

    def _watch_acks(self, loop: asyncio.AbstractEventLoop, worker: _Worker) -> None:
        def on_ack() -> None:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                loop.remove_reader(worker.conn.fileno())
                return
            if message[0] == "applied":
                worker.applied = message[1]
                self._note_applied()
            elif message[0] == "stats":
                worker.stats = message

        watch_pipe(loop, worker.conn, on_ack)
