"""The DataPlaneHandle seam, once per implementation through the same test bodies: the
built-in plane in the control loop and a pool of worker processes, each serving real
origins on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from tests.conftest import TEST_POLICY
from tests.dataplane.conftest import FAST, Origin, proxy_for
from tests.runtime.conftest import ControlLoop

from portway.cache.store import Purge
from portway.model import Backend, CacheSettings, Proxy
from portway.observability.metrics import merge
from portway.router import RouteTable, Snapshot
from portway.runtime.config import Listen
from portway.runtime.control import purger
from portway.runtime.inprocess import InProcessPlane
from portway.runtime.plane_handle import DataPlaneHandle
from portway.runtime.workers import WorkerPool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    """A started handle, driven from the test thread through the control loop."""

    def __init__(self, control: ControlLoop, handle: DataPlaneHandle, port: int) -> None:
        self.control = control
        self.handle = handle
        self.port = port
        self.snapshot = Snapshot(version=0)

    def start(self, *proxies: Proxy) -> None:
        self.snapshot = Snapshot(version=1, routes=RouteTable.build(proxies))
        self.control.call(self.handle.start(self.snapshot))
        self.wait_applied()

    def publish(
        self, upserts: tuple[Proxy, ...] = (), removed: frozenset[str] = frozenset()
    ) -> None:
        routes = self.snapshot.routes.with_changes(upserts=upserts, removed=removed)
        self.snapshot = Snapshot(version=self.snapshot.version + 1, routes=routes)
        changed = {p.id for p in upserts} | removed
        snapshot = self.snapshot
        self.control.run(lambda: self.handle.publish(snapshot, changed))
        self.wait_applied()

    def wait_applied(self) -> None:
        version = self.snapshot.version
        self.control.wait_for(lambda: self.handle.applied_version == version, timeout=60)

    def get(self, host: str, path: str = "/", **headers: str) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.port}{path}", headers={"Host": host, **headers}, timeout=5
        )

    def requests_counted(self) -> dict[tuple[str, str, str], int]:
        """On the control loop: the requests every serving process has counted."""
        return merge(s.metrics for s in self.handle.stats()).requests


@pytest.fixture(params=["in-process", "workers"])
def make_plane(
    request: pytest.FixtureRequest, control: ControlLoop, tmp_path: Path
) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def make(access_log: str | None = None) -> Running:
        listen = Listen(host="127.0.0.1", port=free_port())
        handle: DataPlaneHandle
        if request.param == "in-process":
            handle = InProcessPlane(
                listen, FAST, 1.0, access_log=access_log, backend_policy=TEST_POLICY
            )
        else:
            handle = WorkerPool(
                1, listen, FAST, 1.0, access_log=access_log, backend_policy=TEST_POLICY
            )
        running = Running(control, handle, listen.port)
        started.append(running)
        return running

    yield make
    for running in started:
        running.control.call(running.handle.close())


def test_started_snapshot_is_served_and_its_version_reported(
    make_plane: Callable[..., Running], make_origin: Callable[[str], Origin]
) -> None:
    plane = make_plane()
    plane.start(proxy_for("a.seam.test", make_origin("one").backend()))
    assert plane.control.run(lambda: plane.handle.applied_version) == 1
    response = plane.get("a.seam.test", "/hello")
    assert response.status_code == 200 and response.text == "one /hello 0"
    assert plane.get("nowhere.seam.test").status_code == 404


def test_published_changes_add_and_remove_proxies(
    make_plane: Callable[..., Running], make_origin: Callable[[str], Origin]
) -> None:
    one, two = make_origin("one"), make_origin("two")
    plane = make_plane()
    first = proxy_for("a.seam.test", one.backend(), pid="a")
    plane.start(first)
    plane.publish(upserts=(proxy_for("b.seam.test", two.backend(), pid="b"),))
    assert plane.get("b.seam.test").text == "two / 0"
    assert plane.get("a.seam.test").text == "one / 0"
    plane.publish(removed=frozenset({"a"}))
    assert plane.get("a.seam.test").status_code == 404
    assert plane.get("b.seam.test").status_code == 200


def test_backends_set_down_get_no_traffic(
    make_plane: Callable[..., Running], make_origin: Callable[[str], Origin]
) -> None:
    one, two = make_origin("one"), make_origin("two")
    plane = make_plane()
    plane.start(proxy_for("a.seam.test", one.backend(), two.backend(), pid="a"))
    assert {plane.get("a.seam.test").text.split()[0] for _ in range(10)} == {"one", "two"}
    plane.control.run(lambda: plane.handle.set_health(frozenset({("a", "one")})))
    deadline = time.monotonic() + 10
    while plane.get("a.seam.test").text.startswith("one"):  # a worker takes it a moment
        assert time.monotonic() < deadline, "the down backend kept getting traffic"
    assert {plane.get("a.seam.test").text.split()[0] for _ in range(10)} == {"two"}


def test_stats_count_the_traffic_and_the_open_connections(
    make_plane: Callable[..., Running], make_origin: Callable[[str], Origin]
) -> None:
    plane = make_plane()
    plane.start(proxy_for("a.seam.test", make_origin("one").backend(), pid="a"))
    with httpx.Client(base_url=f"http://127.0.0.1:{plane.port}") as client:
        for _ in range(5):
            assert client.get("/", headers={"Host": "a.seam.test"}).status_code == 200
        key = ("p", "a.seam.test/", "2xx")
        plane.control.wait_for(lambda: plane.requests_counted().get(key, 0) == 5)
        # the keep-alive connection is still open
        plane.control.wait_for(lambda: sum(s.open_connections for s in plane.handle.stats()) == 1)


def test_a_failing_backend_is_reported_ejected(
    make_plane: Callable[..., Running], make_origin: Callable[[str], Origin]
) -> None:
    dead = Backend(id="dead", address="127.0.0.1", port=free_port())  # nothing listens
    plane = make_plane()
    plane.start(proxy_for("a.seam.test", dead, make_origin("one").backend(), pid="a"))
    assert not plane.control.run(lambda: plane.handle.is_ejected(("a", "dead")))
    for _ in range(10):
        plane.get("a.seam.test")
    plane.control.wait_for(lambda: plane.handle.is_ejected(("a", "dead")))
    assert not plane.control.run(lambda: plane.handle.is_ejected(("a", "one")))


def test_reconfigure_switches_settings_and_reopens_the_access_log(
    make_plane: Callable[..., Running], make_origin: Callable[[str], Origin], tmp_path: Path
) -> None:
    before, after = tmp_path / "before.log", tmp_path / "after.log"
    plane = make_plane(access_log=str(before))
    plane.start(proxy_for("a.seam.test", make_origin("one").backend(), pid="a"))
    big = {"X-Big": "x" * 4000}
    assert plane.get("a.seam.test", **big).status_code == 200
    strict = replace(FAST, max_header_bytes=2048)
    plane.control.run(lambda: plane.handle.reconfigure(strict, str(after)))
    deadline = time.monotonic() + 10
    while plane.get("a.seam.test", **big).status_code != 431:  # workers take it a moment
        assert time.monotonic() < deadline, "the new settings never applied"

    missing = str(tmp_path / "no" / "such" / "dir.log")
    with pytest.raises(OSError):
        plane.control.run(lambda: plane.handle.reconfigure(FAST, missing))
    time.sleep(0.3)  # time enough for a worker to apply anything it had been sent
    assert plane.get("a.seam.test", **big).status_code == 431  # nothing changed
    assert plane.get("a.seam.test").status_code == 200

    plane.control.call(plane.handle.close())
    assert before.read_text().count('"status":200') == 1
    assert after.read_text().count('"status":200') == 1


def test_close_stops_the_listeners(
    make_plane: Callable[..., Running], make_origin: Callable[[str], Origin]
) -> None:
    plane = make_plane()
    plane.start(proxy_for("a.seam.test", make_origin("one").backend(), pid="a"))
    assert plane.get("a.seam.test").status_code == 200
    plane.control.call(plane.handle.close())
    with pytest.raises(httpx.ConnectError):
        plane.get("a.seam.test")


def test_a_purge_through_the_apis_purger_reaches_the_cache(
    make_plane: Callable[..., Running], make_origin: Callable[[str], Origin]
) -> None:
    """The control process's purge (control.purger: an API thread → the control loop →
    the handle) drops the entry, whichever kind of plane serves it."""
    origin = make_origin("one")
    plane = make_plane()
    cache = CacheSettings(enabled=True, default_ttl=60.0)
    plane.start(proxy_for("c.seam.test", origin.backend(), pid="c", cache=cache))
    plane.get("c.seam.test", "/page")
    assert plane.get("c.seam.test", "/page").headers["cache-status"] == "portway; hit"
    purge = purger(plane.handle, plane.control.loop)  # called from this (non-loop) thread
    assert purge("c", Purge(urls=((None, b"/page"),))) == 1
    assert purge("c", Purge(urls=((None, b"/page"),))) == 0
    assert plane.get("c.seam.test", "/page").headers["cache-status"].startswith("portway; fwd")
    assert len(origin.seen) == 2
