"""Issue 7, defect 3: ``/metrics`` names every tenant's proxies and their traffic, so it
must not be readable by whoever reaches the API port, and never through the data plane.

It is served on a listener of its own (``--metrics``, loopback by default, as Prometheus
exporters do); on the API listener it answers admin tokens only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.api.conftest import assert_error
from tests.integration.harness import (
    Backend,
    Portway,
    create_project_and_proxy,
    wait_routed,
)

COUNTER = 'portway_requests_total{project="alpha",proxy="m.alpha.test/",code="2xx"}'


def _member_token(pw: Portway) -> str:
    made = pw.api("POST", "/v1/alpha/tokens", json={"token": {"role": "member"}})
    assert made.status_code == 201, made.text
    return str(made.json()["token"]["secret"])


def _wait_counted(url: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(url, timeout=5).text
        if COUNTER in text:
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.1)


def test_api_metrics_need_an_admin_token(portway: Portway, backends: list[Backend]) -> None:
    create_project_and_proxy(portway, "alpha", "m.alpha.test", [backends[0].port])
    wait_routed(portway, "m.alpha.test")
    anonymous = httpx.get(f"{portway.api_url}/metrics", timeout=5)
    assert_error(anonymous, 401)
    assert "alpha" not in anonymous.text
    bad = httpx.get(f"{portway.api_url}/metrics", headers={"X-Auth-Token": "nope"}, timeout=5)
    assert_error(bad, 401)
    tenant = portway.api("GET", "/metrics", token=_member_token(portway))
    assert_error(tenant, 403)
    assert "m.alpha.test" not in tenant.text
    admin = portway.api("GET", "/metrics")
    assert admin.status_code == 200 and "portway_snapshot_version" in admin.text
    bearer = httpx.get(
        f"{portway.api_url}/metrics",
        headers={"Authorization": f"Bearer {portway.admin_token}"},
        timeout=5,
    )
    assert bearer.status_code == 200  # what Prometheus' `authorization:` block sends


def test_metrics_listener_serves_metrics_and_nothing_else(
    portway: Portway, backends: list[Backend]
) -> None:
    create_project_and_proxy(portway, "alpha", "m.alpha.test", [backends[0].port])
    wait_routed(portway, "m.alpha.test")
    text = _wait_counted(f"{portway.metrics_url}/metrics")
    assert "# TYPE portway_open_connections gauge" in text
    for path in ("/v1/projects", "/healthz", "/openapi.json", "/"):
        r = httpx.get(f"{portway.metrics_url}{path}", timeout=5)
        assert r.status_code == 404, (path, r.text)


def test_metrics_are_never_served_on_the_data_plane(
    portway: Portway, backends: list[Backend]
) -> None:
    create_project_and_proxy(portway, "alpha", "m.alpha.test", [backends[0].port])
    wait_routed(portway, "m.alpha.test")
    for host in ("127.0.0.1", f"127.0.0.1:{portway.http_port}", "unknown.test"):
        r = portway.get(host, "/metrics")
        assert r.status_code == 404 and "portway_" not in r.text, (host, r.text)
    # A tenant's own /metrics path goes to the tenant's backend, not to Portway's.
    assert portway.get("m.alpha.test", "/metrics").json()["backend"] == "b0"


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (from /proc: its sockets' inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_metrics_listener_is_the_only_extra_port(portway: Portway) -> None:
    assert portway.proc is not None
    expected = {portway.api_port, portway.http_port, portway.https_port, portway.metrics_port}
    assert listening_ports(portway.proc.pid) == expected


def test_empty_metrics_flag_turns_the_listener_off(tmp_path: Path) -> None:
    pw = Portway(tmp_path / "data", metrics=False)
    pw.start()
    try:
        assert pw.proc is not None
        assert listening_ports(pw.proc.pid) == {pw.api_port, pw.http_port, pw.https_port}
        assert pw.api("GET", "/metrics").status_code == 200  # admins still get them
    finally:
        pw.stop()
    assert any(ln.split() == ["metrics:", "off"] for ln in pw.output.splitlines()), pw.output
