"""A worker that stops reading its pipe never stalls the control process: snapshots for
it wait (only the newest one is kept), the loop keeps answering, and the worker catches
up with the newest version once it runs again."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import time

import pytest
from tests.conftest import TEST_POLICY
from tests.runtime.conftest import ControlLoop

from portway.dataplane.settings import DataPlaneSettings
from portway.model import Backend, Proxy
from portway.router import RouteTable, Snapshot
from portway.runtime.config import Listen
from portway.runtime.worker_messages import SnapshotPlan
from portway.runtime.workers import WorkerPool, encode_plan

COUNT = 20_000  # a pickled full snapshot of about 3 MB: many pipe buffers' worth


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def big_routes() -> RouteTable:
    return RouteTable.build(
        Proxy(
            id=f"p{i}",
            project="x",
            hostname=f"h{i}.stall.test",
            backends=(Backend(id=f"b{i}", address="127.0.0.1", port=9),),
        )
        for i in range(COUNT)
    )


def test_a_stopped_worker_never_stalls_the_control_loop(control: ControlLoop) -> None:
    routes = big_routes()
    listen = Listen(host="127.0.0.1", port=free_port())
    pool = WorkerPool(2, listen, DataPlaneSettings(), drain_timeout=1, backend_policy=TEST_POLICY)
    control.call(pool.start(Snapshot(version=1, routes=routes)))
    try:
        control.wait_for(lambda: pool.applied_version >= 1, timeout=60)
        pids = pool.pids()
        os.kill(pids[0], signal.SIGSTOP)
        try:
            published = control.submit(_publish_all(pool, routes, range(2, 6)))
            started = time.monotonic()
            worst = 0.0
            while time.monotonic() - started < 1.5:
                worst = max(worst, control.latency())
                time.sleep(0.02)
            assert worst < 0.1, f"the control loop stalled for {worst:.2f}s"
            published.result(timeout=5)
        finally:
            os.kill(pids[0], signal.SIGCONT)
        control.wait_for(lambda: pool.applied_version == 5, timeout=60)
        assert pool.pids() == pids, "a worker was restarted"
    finally:
        control.call(pool.close())


def test_encoding_a_big_snapshot_runs_no_collection() -> None:
    """The cause of the stall above: pickling 20 000 routes used to trigger full cyclic
    collections, each scanning the heap with the GIL held while the loop waited."""
    plan = SnapshotPlan(Snapshot(version=1, routes=big_routes()), None)
    collections: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()
    gc.callbacks.append(note)
    try:
        frame = encode_plan(plan)
    finally:
        gc.callbacks.remove(note)
    assert len(frame) > 1_000_000
    assert collections == []
    assert gc.isenabled()


def test_a_worker_stalled_too_long_is_replaced_and_gets_the_newest(control: ControlLoop) -> None:
    routes = big_routes()
    listen = Listen(host="127.0.0.1", port=free_port())
    pool = WorkerPool(
        2,
        listen,
        DataPlaneSettings(),
        drain_timeout=1,
        backend_policy=TEST_POLICY,
        stall_timeout=1.0,
        supervise_interval=0.1,
    )
    control.call(pool.start(Snapshot(version=1, routes=routes)))
    try:
        control.wait_for(lambda: pool.applied_version >= 1, timeout=60)
        stalled, healthy = pool.pids()
        os.kill(stalled, signal.SIGSTOP)
        control.call(_publish_all(pool, routes, range(2, 4)))
        control.wait_for(lambda: stalled not in pool.pids(), timeout=30)
        assert healthy in pool.pids()
        control.wait_for(lambda: pool.applied_version == 3, timeout=60)
        with pytest.raises(ProcessLookupError):
            os.kill(stalled, 0)  # killed and reaped, not left stopped
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stalled, signal.SIGCONT)
        control.call(pool.close())


async def _publish_all(pool: WorkerPool, routes: RouteTable, versions: range) -> None:
    for version in versions:
        pool.publish(Snapshot(version=version, routes=routes), None)
