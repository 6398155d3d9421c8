"""``portway serve`` end to end: API → store → reconciler → data plane → backends."""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import (
    Backend,
    Portway,
    create_project_and_proxy,
    wait_routed,
)


def test_proxy_created_through_the_api_routes_round_robin(
    portway: Portway, backends: list[Backend]
) -> None:
    create_project_and_proxy(portway, "alpha", "wiki.alpha.test", [b.port for b in backends])
    wait_routed(portway, "wiki.alpha.test")
    answers = Counter(portway.get("wiki.alpha.test").json()["backend"] for _ in range(30))
    assert answers == {"b0": 10, "b1": 10, "b2": 10}


def test_backend_sees_forwarded_headers_and_unchanged_uri(
    portway: Portway, backends: list[Backend]
) -> None:
    create_project_and_proxy(
        portway, "alpha", "tools.alpha.test", [backends[0].port], path_prefix="/tool"
    )
    wait_routed(portway, "tools.alpha.test", status=404)
    seen = portway.get(
        "Tools.Alpha.Test.", "/tool/page?x=1", headers={"X-Forwarded-For": "6.6.6.6"}
    ).json()
    assert seen["path"] == "/tool/page?x=1"
    headers = seen["headers"]
    assert headers["host"] == "Tools.Alpha.Test."
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "Tools.Alpha.Test."
    assert headers["x-forwarded-port"] == str(portway.http_port)
    assert "for=127.0.0.1" in headers["forwarded"]


def test_unknown_host_gets_404_and_deleted_proxy_stops_routing(
    portway: Portway, backends: list[Backend]
) -> None:
    assert portway.get("nobody.test").status_code == 404
    proxy = create_project_and_proxy(portway, "alpha", "gone.alpha.test", [backends[0].port])
    wait_routed(portway, "gone.alpha.test")
    r = portway.api("DELETE", f"/v1/alpha/proxies/{proxy['id']}")
    assert r.status_code == 204, r.text
    wait_routed(portway, "gone.alpha.test", status=404)


def test_backend_changes_reach_traffic(portway: Portway, backends: list[Backend]) -> None:
    proxy = create_project_and_proxy(portway, "alpha", "live.alpha.test", [backends[0].port])
    wait_routed(portway, "live.alpha.test")
    r = portway.api(
        "PUT",
        f"/v1/alpha/proxies/{proxy['id']}/backends",
        json={"backends": [{"address": "127.0.0.1", "port": backends[1].port}]},
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while portway.get("live.alpha.test").json()["backend"] != "b1":
        assert time.monotonic() < deadline, "backend replacement never took effect"
        time.sleep(0.01)
    assert {portway.get("live.alpha.test").json()["backend"] for _ in range(5)} == {"b1"}


@pytest.mark.parametrize("workers", [0, 2])
def test_change_propagation_is_well_under_a_second(
    tmp_path: Path, backends: list[Backend], workers: int
) -> None:
    """API 2xx → first request routed; the figures are printed for the notes."""
    portway = Portway(tmp_path / "data", workers=workers)
    portway.start()
    try:
        _measure_propagation(portway, backends, workers)
    finally:
        portway.stop()


def _measure_propagation(portway: Portway, backends: list[Backend], workers: int) -> None:
    portway.api("POST", "/v1/projects", json={"project": {"name": "lat"}})
    latencies = []
    with httpx.Client(base_url=portway.http_url, timeout=5) as data:
        for i in range(40):
            host = f"h{i}.lat.test"
            body = {
                "proxy": {
                    "hostname": host,
                    "backends": [{"address": "127.0.0.1", "port": backends[0].port}],
                }
            }
            r = portway.api("POST", "/v1/lat/proxies", json=body)
            assert r.status_code == 201, r.text
            start = time.monotonic()
            while data.get("/", headers={"Host": host}).status_code != 200:
                assert time.monotonic() - start < 2, f"{host} not routed after 2s"
            latencies.append(time.monotonic() - start)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"\npropagation (workers={workers}) API 2xx -> routed: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    assert p99 < 1000


def test_restart_keeps_every_proxy_and_the_revision_continues(
    tmp_path: Path, backends: list[Backend]
) -> None:
    pw = Portway(tmp_path / "data")
    pw.start()
    try:
        create_project_and_proxy(pw, "alpha", "keep.alpha.test", [b.port for b in backends[:2]])
        create_project_and_proxy(pw, "alpha", "also.alpha.test", [backends[2].port])
        before = pw.api("GET", "/v1/alpha/changes").json()["changes"]
        top = max(c["revision"] for c in before)
    finally:
        assert pw.stop() == 0
    pw.start()
    try:
        wait_routed(pw, "keep.alpha.test")
        assert pw.get("also.alpha.test").json()["backend"] == "b2"
        listed = pw.api("GET", "/v1/alpha/proxies").json()["proxies"]
        assert sorted(p["hostname"] for p in listed) == ["also.alpha.test", "keep.alpha.test"]
        create_project_and_proxy(pw, "alpha", "new.alpha.test", [backends[0].port])
        after = pw.api("GET", "/v1/alpha/changes").json()["changes"]
        assert max(c["revision"] for c in after) > top
    finally:
        pw.stop()


def test_sigterm_exits_zero(portway: Portway) -> None:
    assert portway.stop(signal.SIGTERM) == 0


def test_sighup_does_not_stop_the_node(tmp_path: Path, backends: list[Backend]) -> None:
    pw = Portway(tmp_path / "data", workers=1)
    pw.start()
    try:
        create_project_and_proxy(pw, "alpha", "hup.alpha.test", [backends[0].port])
        wait_routed(pw, "hup.alpha.test")
        assert pw.proc is not None
        for pid in (pw.proc.pid, *workers_of(pw.proc.pid)):  # as `kill -HUP` to the group
            os.kill(pid, signal.SIGHUP)
        time.sleep(0.5)
        assert pw.proc.poll() is None
        assert pw.get("hup.alpha.test").json()["backend"] == "b0"
    finally:
        assert pw.stop() == 0


def workers_of(pid: int) -> set[int]:
    """Worker processes of ``pid`` (multiprocessing's resource tracker is not one)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            cmdline = (entry / "cmdline").read_bytes() if f"\nPPid:\t{pid}\n" in status else b""
            if b"spawn_main" in cmdline:
                found.add(int(entry.name))
    return found


def test_workers_share_the_listener_and_a_killed_worker_is_restarted(
    tmp_path: Path, backends: list[Backend]
) -> None:
    pw = Portway(tmp_path / "data", workers=2)
    pw.start()
    try:
        assert pw.proc is not None
        create_project_and_proxy(pw, "alpha", "w.alpha.test", [backends[0].port])
        wait_routed(pw, "w.alpha.test")
        workers = workers_of(pw.proc.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:
            now = workers_of(pw.proc.pid) - {victim}
            if len(now) >= len(workers):
                break
            assert time.monotonic() < deadline, "killed worker was not restarted"
            time.sleep(0.1)
        # Every request succeeds whichever worker the kernel hands the connection to.
        for _ in range(20):
            assert pw.get("w.alpha.test").json()["backend"] == "b0"
        create_project_and_proxy(pw, "alpha", "w2.alpha.test", [backends[1].port])
        wait_routed(pw, "w2.alpha.test")
        for _ in range(20):
            assert pw.get("w2.alpha.test").json()["backend"] == "b1"
    finally:
        assert pw.stop() == 0
