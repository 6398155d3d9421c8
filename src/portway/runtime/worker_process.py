"""Inside a data-plane worker process: a DataPlane fed over the pipe to the control process.

A worker starts listening only once its first snapshot is in force: with SO_REUSEPORT
the kernel hands it new connections from the moment it listens, and an empty table
would answer them all 404. It reports a version applied only once it listens, so the
pool's applied version is one that every worker is serving.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from portway.dataplane import sockets
from portway.dataplane.server import DataPlane
from portway.dataplane.settings import DataPlaneSettings
from portway.model.backend_policy import BackendPolicy
from portway.model.listen_policy import ListenPolicy
from portway.router import Snapshot
from portway.runtime.access_logs import open_access_log, switch
from portway.runtime.channel import PipeChannel
from portway.runtime.config import Listen, TlsListen
from portway.runtime.plane_handle import PlaneStats
from portway.runtime.worker_messages import (
    Applied,
    FullSnapshot,
    HealthUpdate,
    Purged,
    Purges,
    SettingsUpdate,
    SnapshotDelta,
    TicketKeysUpdate,
    apply_message,
)

log = logging.getLogger("portway.workers")

STATS_INTERVAL = 1.0


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerSpec:
    """Everything a worker process is started with (pickled to it once)."""

    listen: Listen
    settings: DataPlaneSettings
    drain: float
    tls: TlsListen | None = None
    access_log: str | None = None  # path, "-" for stdout, None for none
    backend_policy: BackendPolicy = field(default_factory=BackendPolicy)
    listen_policy: ListenPolicy = field(default_factory=ListenPolicy)
    nice: int = 0  # added to the worker's nice value at start (``--worker-nice``)


def reuseport_socket(listen: Listen) -> socket.socket:
    """A listening socket that other workers can bind too."""
    return sockets.reuseport_socket(listen.host, listen.port)


def settle_heap() -> None:
    """Move what a full snapshot left on the heap out of the cyclic GC's reach.

    A 100 000-proxy snapshot is about a million long-lived objects; without this, the
    first full collections after start-up walk all of them (300 ms pauses measured under
    load). Collect first, so that no cyclic garbage is frozen with them. Deltas are small
    and left to the normal collector.
    """
    gc.collect()
    gc.freeze()


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process."""
    import uvloop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    if spec.nice:
        # Workers take all the CPU they can under load; the control process's work per
        # change is small but on the path of every change (API → snapshot → workers).
        # Measured with bench churn at 20 changes/s under wrk: nice 5 took API→routed
        # p99 from 114-660 ms to 68-393 ms (docs/running.md).
        os.nice(spec.nice)
    uvloop.run(_worker(conn, spec))


class _ControlLink:
    """The worker's end of the pipe: applies what the control process sends and answers."""

    def __init__(self, plane: DataPlane, conn: Connection, stop: asyncio.Event) -> None:
        self.plane = plane
        self.snapshot = Snapshot(version=0)
        self.ready = asyncio.Event()  # set once the first snapshot is in force
        self.listening = False  # until then, no version is served: none is reported
        self._stop = stop
        self.channel = PipeChannel(conn, self.on_message, on_closed=self._control_gone)

    def _control_gone(self) -> None:
        log.warning("control pipe closed; worker shutting down")
        self._stop.set()

    def on_message(self, message: object) -> None:
        if isinstance(message, FullSnapshot | SnapshotDelta):
            self.snapshot = apply_message(self.snapshot, message)
            self.plane.apply(self.snapshot)
            if isinstance(message, FullSnapshot):
                settle_heap()
            self.ready.set()
            if self.listening:
                self.report_applied()
        elif isinstance(message, HealthUpdate):
            self.plane.set_health(message.down)
        elif isinstance(message, SettingsUpdate):
            reconfigure(self.plane, message)
        elif isinstance(message, TicketKeysUpdate):
            self.plane.tls.set_ticket_keys(message.keys)
        elif isinstance(message, Purges):
            counts = tuple((r.id, self.plane.purge(r.proxy_id, r.purge)) for r in message.requests)
            self.channel.send("purged", Purged(counts), Purged.joined)
        else:
            log.error("unknown message from the control process: %s", type(message).__name__)

    def report_applied(self) -> None:
        self.channel.send("applied", Applied(version=self.snapshot.version))

    def send_stats(self) -> None:
        plane = self.plane
        stats = PlaneStats(
            metrics=plane.metrics.export(),
            open_connections=plane.open_connections,
            ejected=plane.ejected(),
        )
        self.channel.send("stats", stats)  # a newer one replaces one the control has not read


def reconfigure(plane: DataPlane, update: SettingsUpdate) -> None:
    """A worker's part of SIGHUP; a log it cannot open leaves the old one in place (the
    control process checked the path, so this is a race with the file system)."""
    try:
        fresh = open_access_log(update.access_log)
    except OSError as exc:
        log.error("cannot open the access log: %s; keeping the old one", exc)
        fresh = plane.access_log
    switch(plane, update.settings, fresh)


async def _worker(conn: Connection, spec: WorkerSpec) -> None:
    loop = asyncio.get_running_loop()
    plane = DataPlane(
        spec.settings,
        access_log=open_access_log(spec.access_log),
        backend_policy=spec.backend_policy,
        listen_policy=spec.listen_policy,
    )
    stop = asyncio.Event()
    link = _ControlLink(plane, conn, stop)

    def push_stats() -> None:
        # Pushed, not polled: /metrics in the control process never waits on a worker.
        link.send_stats()
        if not stop.is_set():
            loop.call_later(STATS_INTERVAL, push_stats)

    loop.call_later(STATS_INTERVAL, push_stats)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a HUP to the process group is for the control
    if await _first_set(link.ready, stop) is link.ready:
        await _listen(plane, spec)
        link.listening = True
        link.report_applied()
    await stop.wait()
    await plane.close(spec.drain)
    link.channel.close()
    if plane.access_log is not None:  # a SettingsUpdate may have reopened it
        plane.access_log.flush()


async def _first_set(*events: asyncio.Event) -> asyncio.Event:
    waits = {asyncio.ensure_future(e.wait()): e for e in events}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return waits[next(iter(done))]


async def _listen(plane: DataPlane, spec: WorkerSpec) -> None:
    listen, tls = spec.listen, spec.tls
    await plane.listen_http(listen.host, listen.port, sock=reuseport_socket(listen))
    if tls is not None:
        plane.tls.load_default(tls.chain, tls.key)
        https = tls.listen
        await plane.listen_https(https.host, https.port, sock=reuseport_socket(https))
