"""Ports of their own through a real ``portway serve`` with two workers (issue 13).

Seed 001 (the DAIR cloud's EC2 API): four nova-api processes behind Portway on an HTTP
and an HTTPS port of their own, X-Forwarded-For replaced, X-Forwarded-Proto: https on
the HTTPS port, balanced, one of the four killed and ejected. Then a listener opened
and closed while other ports carry load, with no failed request, and a port outside
--listen-ports refused.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dataplane.test_listeners import refused
from tests.integration.harness import VENV_BIN, Backend, BackendProcess, Load, Portway, free_ports

HOST = "ec2.portway.test"  # under the default zone: the generated certificate covers it


@pytest.fixture
def ports() -> list[int]:
    return free_ports(4)


@pytest.fixture
def node(tmp_path: Path, ports: list[int]) -> Iterator[Portway]:
    allowed = ",".join(str(p) for p in ports[:3])
    pw = Portway(tmp_path / "data", workers=2, extra=["--listen-ports", allowed])
    pw.start()
    r = pw.api("POST", "/v1/projects", json={"project": {"name": "dair"}})
    assert r.status_code == 201, r.text
    yield pw
    pw.stop()


def create(pw: Portway, **proxy: Any) -> dict[str, Any]:
    r = pw.api("POST", "/v1/dair/proxies", json={"proxy": {"hostname": HOST, **proxy}})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()["proxy"]
    return created


def url(scheme: str, port: int) -> str:
    return f"{scheme}://127.0.0.1:{port}/"


def get(scheme: str, port: int, **kw: Any) -> httpx.Response:
    headers = {"Host": HOST, **kw.pop("headers", {})}
    return httpx.get(url(scheme, port), headers=headers, verify=False, timeout=5, **kw)


def wait_answers(scheme: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if get(scheme, port).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{scheme} port {port} never answered"
        time.sleep(0.02)


def test_seed_001_the_ec2_api_on_an_http_and_an_https_port(node: Portway, ports: list[int]) -> None:
    http_port, https_port = ports[0], ports[1]
    novas = [BackendProcess(f"nova-api-{8781 + i}") for i in range(4)]
    try:
        members = [{"address": "127.0.0.1", "port": n.port} for n in novas]
        check = {"interval": 0.2, "timeout": 0.5, "rise": 1, "fall": 2}
        plain = create(node, listen_port=http_port, backends=members, health_check=check)
        secure = create(
            node, listen_port=https_port, protocol="https", backends=members, health_check=check
        )
        wait_answers("http", http_port)
        wait_answers("https", https_port)
        forged = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "gopher"}
        seen: Counter[str] = Counter()
        for scheme, port in (("http", http_port), ("https", https_port)):
            for _ in range(40):
                answer = get(scheme, port, headers=forged)
                assert answer.status_code == 200
                body = answer.json()
                seen[body["backend"]] += 1
                headers = body["headers"]
                assert headers["x-forwarded-for"] == "127.0.0.1"  # HeadRemove, as pound did
                assert headers["x-forwarded-proto"] == scheme
                assert headers["x-forwarded-port"] == str(port)
        assert set(seen) == {f"nova-api-{8781 + i}" for i in range(4)}  # balanced over four
        assert refused(ports[2])  # allowed, but no proxy claims it: not open

        novas[0].kill()
        for proxy in (plain, secure):
            deadline = time.monotonic() + 10
            while True:
                listed = node.api("GET", f"/v1/dair/proxies/{proxy['id']}/backends").json()
                health = {b["port"]: b["health"] for b in listed["backends"]}
                if health[novas[0].port] == "down":
                    break
                assert time.monotonic() < deadline, health
                time.sleep(0.05)
        after = Counter(
            get(scheme, port).json()["backend"]
            for scheme, port in (("http", http_port), ("https", https_port))
            for _ in range(30)
        )
        assert "nova-api-8781" not in after and len(after) == 3

        listing = subprocess.run(
            [str(VENV_BIN / "portway"), "-p", "dair", "proxy", "list"],
            env=node.env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listing.returncode == 0, listing.stderr
        assert f"{http_port}/http" in listing.stdout and f"{https_port}/https" in listing.stdout
    finally:
        for nova in novas:
            nova.kill()


def test_a_port_outside_listen_ports_and_portways_own_are_refused(
    node: Portway, ports: list[int]
) -> None:
    for port in (ports[3], node.api_port, node.http_port, node.metrics_port):
        r = node.api(
            "POST", "/v1/dair/proxies", json={"proxy": {"hostname": HOST, "listen_port": port}}
        )
        assert r.status_code == 403, r.text
        assert r.json()["error"]["field"] == "listen_port"
    assert refused(ports[3])


def test_a_listener_opened_and_closed_under_load_fails_no_request(
    node: Portway, ports: list[int], backends: list[Backend]
) -> None:
    steady, toggled = ports[0], ports[1]
    members = [{"address": "127.0.0.1", "port": backends[0].port}]
    create(node, backends=members)  # the shared listeners
    create(node, listen_port=steady, backends=members)
    wait_answers("http", steady)
    loads = [Load(node.http_url, HOST), Load(url("http", steady), HOST)]
    try:
        time.sleep(0.3)
        for _ in range(3):
            made = create(node, listen_port=toggled, protocol="https", backends=members)
            wait_answers("https", toggled)
            r = node.api("DELETE", f"/v1/dair/proxies/{made['id']}")
            assert r.status_code == 204, r.text
            deadline = time.monotonic() + 10
            while not refused(toggled):
                assert time.monotonic() < deadline, "the last proxy went but the port stayed open"
                time.sleep(0.02)
        time.sleep(0.3)
    finally:
        for load in loads:
            load.stop()
    assert [load.failed for load in loads] == [[], []]
    assert all(load.ok > 20 for load in loads), [load.ok for load in loads]
    print(f"\n{sum(load.ok for load in loads)} requests on other listeners, 0 failed")
