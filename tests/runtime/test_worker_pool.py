"""The worker pool with real worker processes: a snapshot far larger than a pipe buffer
arrives whole, deltas follow, and no worker is restarted on the way."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import socket
import struct
import threading
import time

import httpx
import uvloop
from tests.conftest import TEST_POLICY

from portway.dataplane.settings import DataPlaneSettings
from portway.model import Backend, Proxy
from portway.router import RouteTable, Snapshot
from portway.runtime.config import Listen
from portway.runtime.workers import WorkerPool, watch_pipe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port_backend(i: int) -> tuple[Backend, ...]:
    return (Backend(id=f"b{i}", address="127.0.0.1", port=9),)


def test_large_snapshot_and_deltas_reach_the_worker_whole() -> None:
    count = 30_000  # a pickled message of several MB: many pipe buffers' worth
    proxies = [
        Proxy(id=f"p{i}", project="x", hostname=f"h{i}.pool.test", backends=closed_port_backend(i))
        for i in range(count)
    ]
    first = Snapshot(version=1, routes=RouteTable.build(proxies))
    listen = Listen(host="127.0.0.1", port=free_port())

    async def main() -> list[int]:
        pool = WorkerPool(
            1, listen, DataPlaneSettings(), drain_timeout=1, backend_policy=TEST_POLICY
        )
        pool.start(first)
        supervisor = asyncio.create_task(pool.supervise(interval=0.1))
        pids = pool.pids()
        try:
            await wait_applied(pool, 1)
            extra = Proxy(id="new", project="x", hostname="new.pool.test")
            second = Snapshot(version=2, routes=first.routes.with_changes(upserts=[extra]))
            pool.publish(second, {"new"})
            await wait_applied(pool, 2)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listen.port}") as client:
                last = await client.get("/", headers={"Host": f"h{count - 1}.pool.test"})
                added = await client.get("/", headers={"Host": "new.pool.test"})
                unknown = await client.get("/", headers={"Host": "nope.pool.test"})
            assert pool.pids() == pids, "a worker was restarted"
            return [last.status_code, added.status_code, unknown.status_code]
        finally:
            supervisor.cancel()
            await pool.stop()

    # routed to a closed port → 502; the new proxy has no backend → 503; unknown → 404
    assert asyncio.run(main()) == [502, 503, 404]


async def wait_applied(pool: WorkerPool, version: int) -> None:
    for _ in range(300):
        if pool.applied_version >= version:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"workers never applied version {version}: {pool.applied_version}")


def test_a_message_that_arrives_in_pieces_is_read_whole() -> None:
    """The event loop makes a watched pipe non-blocking; a message written slowly must
    still be read whole rather than failing half way with EAGAIN."""
    parent, child = multiprocessing.Pipe(duplex=True)
    payload = pickle.dumps(("full", 7, list(range(200_000))))
    frame = struct.pack("!i", len(payload)) + payload  # Connection's wire format

    def slow_writer() -> None:
        fd = child.fileno()
        for start in range(0, len(frame), 65536):
            time.sleep(0.002)
            os.write(fd, frame[start : start + 65536])

    async def main() -> tuple[object, ...]:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[tuple[object, ...]] = loop.create_future()
        watch_pipe(loop, parent, lambda: got.done() or got.set_result(parent.recv()))
        threading.Thread(target=slow_writer, daemon=True).start()
        return await asyncio.wait_for(got, 10)

    message = uvloop.run(main())
    assert message[0] == "full" and message[1] == 7 and len(message[2]) == 200_000  # type: ignore[arg-type]
