"""The worker pool with real worker processes: a snapshot far larger than a pipe buffer
arrives whole, deltas follow, and no worker is restarted on the way."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import threading
import time
from multiprocessing.connection import Connection

import httpx
import uvloop
from tests.conftest import TEST_POLICY

from portway.dataplane.settings import DataPlaneSettings
from portway.model import Backend, Proxy
from portway.model.quota import CacheLimits
from portway.router import RouteTable, Snapshot
from portway.runtime.channel import PipeChannel
from portway.runtime.config import Listen
from portway.runtime.framing import FrameDecoder, encode
from portway.runtime.worker_messages import FullSnapshot
from portway.runtime.workers import WorkerPool


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
        await pool.start(first)
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
            await pool.close()

    # routed to a closed port → 502; the new proxy has no backend → 503; unknown → 404
    assert asyncio.run(main()) == [502, 503, 404]


async def wait_applied(pool: WorkerPool, version: int) -> None:
    for _ in range(300):
        if pool.applied_version >= version:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"workers never applied version {version}: {pool.applied_version}")


def test_a_message_that_arrives_in_pieces_is_read_whole() -> None:
    """A frame written slowly, in pieces, is handed on whole once it is complete."""
    parent, child = multiprocessing.Pipe(duplex=True)
    frame = encode(
        FullSnapshot(
            version=7,
            proxies=(),
            certificates={"x": "y" * 500_000},  # type: ignore[dict-item]
            cache_limits=CacheLimits(),
        )
    )

    def slow_writer() -> None:
        fd = child.fileno()
        for start in range(0, len(frame), 65536):
            time.sleep(0.002)
            os.write(fd, frame[start : start + 65536])

    async def main() -> object:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[object] = loop.create_future()
        channel = PipeChannel(parent, lambda m: got.done() or got.set_result(m))
        threading.Thread(target=slow_writer, daemon=True).start()
        try:
            return await asyncio.wait_for(got, 10)
        finally:
            channel.close()

    message = uvloop.run(main())
    assert isinstance(message, FullSnapshot) and message.version == 7
    assert len(message.certificates["x"]) == 500_000  # type: ignore[arg-type]


def test_a_peer_that_does_not_read_never_blocks_a_send() -> None:
    """Sends to a peer that reads nothing return at once; only the newest message of a
    kind waits behind the frame in flight, and the wait is measured."""
    parent, child = multiprocessing.Pipe(duplex=True)
    big = "z" * 2_000_000  # far more than the pipe's buffer

    async def main() -> tuple[float, float]:
        channel = PipeChannel(parent, lambda m: None)
        started = time.monotonic()
        for version in range(10):
            channel.send("snapshot", (version, big))
        took = time.monotonic() - started
        await asyncio.sleep(0.3)
        blocked = channel.blocked_for()
        reader = threading.Thread(target=_read_all, args=(child, got), daemon=True)
        reader.start()
        for _ in range(200):
            if channel.idle:
                break
            await asyncio.sleep(0.02)
        channel.close()
        reader.join(5)
        return took, blocked

    got: list[object] = []
    took, blocked = uvloop.run(main())
    assert took < 0.5, f"sends took {took:.2f}s"
    assert blocked >= 0.25
    # the first was in flight when the others came; of those, only the newest was kept
    assert [m[0] for m in got] == [0, 9]  # type: ignore[index]


def _read_all(conn: Connection, into: list[object]) -> None:
    decoder = FrameDecoder()
    while True:
        data = os.read(conn.fileno(), 1 << 20)
        if not data:
            return
        into += decoder.feed(data)


def _nice(pid: int) -> int:
    # /proc/PID/stat: the command is in parentheses and may hold spaces; nice is the
    # 19th field, the 17th after the parenthesis.
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return int(stat.rsplit(")", 1)[1].split()[16])


def test_workers_run_at_a_lower_priority_than_the_control_process() -> None:
    """``--worker-nice``: the control process (API, reconciler) gets the CPU first on a
    saturated node; the workers' nice value is this process's plus the setting."""
    listen = Listen(host="127.0.0.1", port=free_port())

    async def main() -> list[int]:
        pool = WorkerPool(
            2, listen, DataPlaneSettings(), drain_timeout=1, backend_policy=TEST_POLICY, nice=7
        )
        await pool.start(Snapshot(version=1))
        try:
            await wait_applied(pool, 1)
            return [_nice(pid) for pid in pool.pids()]
        finally:
            await pool.close()

    niced = uvloop.run(main())
    assert niced == [min(19, _nice(os.getpid()) + 7)] * 2
