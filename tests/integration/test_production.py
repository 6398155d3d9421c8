"""Production behaviour through a real ``portway serve``: a backend killed under load is
ejected with no failed GET, API changes under load are hitless for open WebSockets and
in-flight requests, and SIGTERM drains."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dataplane.wsorigin import WsOrigin, ws_connect
from tests.integration.harness import (
    Backend,
    BackendProcess,
    Load,
    Portway,
    create_project_and_proxy,
    wait_routed,
)


@pytest.fixture
def ws_origin() -> Iterator[WsOrigin]:
    origin = WsOrigin()
    yield origin
    origin.stop()


def test_killed_backend_is_ejected_under_load_with_no_failed_get(
    portway: Portway, backends: list[Backend]
) -> None:
    victim = BackendProcess("victim")
    interval, fall = 0.2, 2
    try:
        proxy = create_project_and_proxy(
            portway,
            "alpha",
            "kill.alpha.test",
            [backends[0].port, victim.port],
            health_check={"interval": interval, "timeout": 0.5, "rise": 1, "fall": fall},
        )
        wait_routed(portway, "kill.alpha.test")
        load = Load(portway.http_url, "kill.alpha.test")
        time.sleep(0.5)
        victim.kill()
        killed = time.monotonic()
        while True:
            listed = portway.api("GET", f"/v1/alpha/proxies/{proxy['id']}/backends").json()
            health = {b["port"]: b["health"] for b in listed["backends"]}
            if health[victim.port] == "down":
                ejected = time.monotonic() - killed
                break
            assert time.monotonic() - killed < 10, health
            time.sleep(0.02)
        time.sleep(0.5)
        load.stop()
    finally:
        victim.kill()
    print(f"\nejected {ejected * 1000:.0f} ms after kill (interval*fall = {interval * fall}s)")
    # one probe interval of phase, fall probes, plus the API poll
    assert ejected < interval * (fall + 1) + 0.5
    assert load.failed == [] and load.ok > 10


def test_api_changes_under_load_are_hitless(
    tmp_path: Path, backends: list[Backend], ws_origin: WsOrigin
) -> None:
    pw = Portway(tmp_path / "data", workers=2)
    pw.start()
    try:
        create_project_and_proxy(pw, "alpha", "steady.alpha.test", [backends[0].port])
        create_project_and_proxy(pw, "alpha", "ws.alpha.test", [ws_origin.port])
        busy = create_project_and_proxy(pw, "alpha", "busy.alpha.test", [backends[1].port])
        wait_routed(pw, "steady.alpha.test")
        wait_routed(pw, "busy.alpha.test")
        stack = contextlib.ExitStack()
        sockets = [
            stack.enter_context(ws_connect(pw.http_port, host="ws.alpha.test")) for _ in range(3)
        ]
        steady, changing = (
            Load(pw.http_url, "steady.alpha.test"),
            Load(pw.http_url, "busy.alpha.test"),
        )
        slow: list[int] = []
        in_flight = threading.Thread(
            target=lambda: slow.append(pw.get("steady.alpha.test", "/slow/2").status_code)
        )
        in_flight.start()
        base = f"/v1/alpha/proxies/{busy['id']}"
        algorithms = ["least_conn", "random", "weighted_round_robin", "round_robin"]
        for i in range(20):
            if i % 4 == 0:
                body = {"backends": [{"address": "127.0.0.1", "port": b.port} for b in backends]}
                r = pw.api("PUT", f"{base}/backends", json=body)
            elif i % 4 == 1:
                r = pw.api("PATCH", base, json={"proxy": {"algorithm": algorithms[i % 4]}})
            elif i % 4 == 2:
                r = pw.api(
                    "POST",
                    "/v1/alpha/proxies",
                    json={"proxy": {"hostname": f"extra{i}.alpha.test"}},
                )
            else:
                body = {"backends": [{"address": "127.0.0.1", "port": backends[1].port}]}
                r = pw.api("PUT", f"{base}/backends", json=body)
            assert r.status_code in (200, 201), r.text
            for ws in sockets:  # every socket still answers after every change
                ws.send(f"ping {i}")
                assert ws.recv(timeout=5) == f"ping {i}"
            time.sleep(0.05)
        in_flight.join(10)
        steady.stop()
        changing.stop()
        assert ws_origin.open_connections == 3  # none was dropped and reopened
        stack.close()
    finally:
        pw.stop()
    assert slow == [200]
    assert steady.failed == [] and steady.ok > 20
    assert changing.failed == [] and changing.ok > 20


def test_sigterm_lets_in_flight_requests_finish(portway: Portway, backends: list[Backend]) -> None:
    create_project_and_proxy(portway, "alpha", "drain.alpha.test", [backends[0].port])
    wait_routed(portway, "drain.alpha.test")
    answers: list[int] = []
    request = threading.Thread(
        target=lambda: answers.append(portway.get("drain.alpha.test", "/slow/1.5").status_code)
    )
    request.start()
    time.sleep(0.4)  # the request is in flight at the backend
    assert portway.proc is not None
    portway.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):  # the listener is closed
        httpx.get(f"{portway.http_url}/", headers={"Host": "drain.alpha.test"}, timeout=2)
    request.join(10)
    assert answers == [200]
    assert portway.proc.wait(timeout=10) == 0
