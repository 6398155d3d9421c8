"""``portway serve --dataplane haproxy``: the same API, and the traffic served by a real
HAProxy that Portway starts, configures from each snapshot and changes through its
Runtime API or a seamless reload (issue 11 §1, §3)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portway.drivers import haproxy_runtime
from tests.drivers.haproxy_runner import HAPROXY
from tests.integration.harness import Backend, Portway, create_project_and_proxy, wait_routed


@pytest.fixture
def haproxy_portway(tmp_path: Path) -> Iterator[Portway]:
    pw = Portway(
        tmp_path / "data",
        extra=[
            "--dataplane",
            "haproxy",
            "--haproxy-binary",
            HAPROXY,
            "--haproxy-prefix",
            str(tmp_path / "hap"),
        ],
    )
    pw.start()
    yield pw
    pw.stop()


def _reloads(prefix: Path) -> int:
    """The master's own reload counter (``show proc`` on its CLI)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(prefix / "run" / "master.sock"))
        sock.sendall(b"show proc;quit\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return haproxy_runtime.parse_proc(data.decode()).reloads


def _metrics(pw: Portway) -> dict[str, float]:
    text = httpx.get(f"{pw.metrics_url}/metrics", timeout=5).text
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("portway_snapshot_")
    }


def test_proxies_made_through_the_api_are_served_by_haproxy(
    haproxy_portway: Portway, backends: list[Backend], tmp_path: Path
) -> None:
    pw = haproxy_portway
    assert pw.get("nobody.test").status_code == 404  # Portway's page, from HAProxy
    proxy = create_project_and_proxy(pw, "alpha", "app.alpha.test", [backends[0].port])
    wait_routed(pw, "app.alpha.test", timeout=20)
    assert pw.get("app.alpha.test", "/x").json()["backend"] == "b0"
    values = _metrics(pw)
    assert values["portway_snapshot_applied_version"] == values["portway_snapshot_version"] > 0
    # A backend replaced through the API: the Runtime API, no reload.
    reloads = _reloads(tmp_path / "hap")
    r = pw.api(
        "PUT",
        f"/v1/alpha/proxies/{proxy['id']}/backends",
        json={"backends": [{"address": "127.0.0.1", "port": backends[1].port}]},
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    while pw.get("app.alpha.test").json()["backend"] != "b1":
        assert time.monotonic() < deadline, "backend replacement never took effect"
        time.sleep(0.01)
    assert {pw.get("app.alpha.test").json()["backend"] for _ in range(5)} == {"b1"}
    assert _reloads(tmp_path / "hap") == reloads
    # A deleted proxy is gone from HAProxy: its map entry deleted, still no reload.
    r = pw.api("DELETE", f"/v1/alpha/proxies/{proxy['id']}")
    assert r.status_code == 204, r.text
    wait_routed(pw, "app.alpha.test", status=404, timeout=20)
    assert _reloads(tmp_path / "hap") == reloads
    deadline = time.monotonic() + 10
    while (values := _metrics(pw))["portway_snapshot_applied_version"] < values[
        "portway_snapshot_version"
    ]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_workers_and_haproxy_do_not_mix(tmp_path: Path) -> None:
    pw = Portway(tmp_path / "data", workers=2, extra=["--dataplane", "haproxy"])
    with pytest.raises(RuntimeError, match="--workers"):
        pw.start()
