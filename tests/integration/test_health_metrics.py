"""Active health checks and /metrics through a real ``portway serve`` (in-process data
plane and workers)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import (
    Backend,
    Portway,
    create_project_and_proxy,
    free_port,
    wait_routed,
)

CHECK = {"path": "/", "interval": 0.1, "timeout": 0.5, "rise": 1, "fall": 2}


def backend_health(pw: Portway, proxy_id: str) -> dict[int, dict[str, object]]:
    listed = pw.api("GET", f"/v1/alpha/proxies/{proxy_id}/backends").json()["backends"]
    return {b["port"]: b for b in listed}


@pytest.mark.parametrize("workers", [0, 2])
def test_down_backend_is_reported_and_skipped(
    tmp_path: Path, backends: list[Backend], workers: int
) -> None:
    pw = Portway(tmp_path / "data", workers=workers)
    pw.start()
    try:
        dead = free_port()
        proxy = create_project_and_proxy(
            pw, "alpha", "hc.alpha.test", [backends[0].port, dead], health_check=CHECK
        )
        deadline = time.monotonic() + 10
        while True:
            health = backend_health(pw, proxy["id"])
            if health[dead]["health"] == "down" and health[backends[0].port]["health"] == "up":
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        assert health[dead]["last_error"] == "Connection refused"
        assert health[dead]["last_check"]
        wait_routed(pw, "hc.alpha.test")
        for _ in range(20):  # every request goes to the live backend, none fails
            assert pw.get("hc.alpha.test").json()["backend"] == "b0"
    finally:
        pw.stop()


def test_draining_backend_is_reported(portway: Portway, backends: list[Backend]) -> None:
    proxy = create_project_and_proxy(portway, "alpha", "dr.alpha.test", [backends[0].port])
    backend_id = proxy["backends"][0]["id"]
    r = portway.api(
        "PATCH",
        f"/v1/alpha/proxies/{proxy['id']}/backends/{backend_id}",
        json={"backend": {"weight": 0}},
    )
    assert r.status_code == 200, r.text
    assert backend_health(portway, proxy["id"])[backends[0].port]["health"] == "draining"


@pytest.mark.parametrize("workers", [0, 2])
def test_metrics_count_requests_by_proxy_and_status(
    tmp_path: Path, backends: list[Backend], workers: int
) -> None:
    pw = Portway(tmp_path / "data", workers=workers)
    pw.start()
    try:
        create_project_and_proxy(pw, "alpha", "m.alpha.test", [backends[0].port])
        wait_routed(pw, "m.alpha.test")
        for _ in range(10):
            assert pw.get("m.alpha.test").status_code == 200
        line = 'portway_requests_total{project="alpha",proxy="m.alpha.test/",code="2xx"}'
        deadline = time.monotonic() + 10
        while True:
            text = httpx.get(f"{pw.metrics_url}/metrics", timeout=5).text
            count = next((ln.split()[-1] for ln in text.splitlines() if ln.startswith(line)), "0")
            if int(count) >= 11:  # wait_routed's request plus ten
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
        assert "portway_request_duration_seconds_bucket" in text
        assert "portway_snapshot_version" in text
        gauges = dict(ln.split() for ln in text.splitlines() if ln.startswith("portway_snapshot"))
        assert gauges["portway_snapshot_applied_version"] == gauges["portway_snapshot_version"]
        assert 0 < float(gauges["portway_snapshot_publish_seconds"]) < 5
        apply = float(gauges["portway_snapshot_apply_seconds"])
        assert (0 < apply < 5) if workers else apply == 0
        assert "# TYPE portway_open_connections gauge" in text
    finally:
        pw.stop()
