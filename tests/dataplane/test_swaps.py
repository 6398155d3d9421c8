"""Hitless snapshot swaps: traffic and open WebSockets never notice a new table."""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Callable

from websockets.sync.client import ClientConnection

from portway.model import ALGORITHMS, Proxy
from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for
from tests.dataplane.wsorigin import WsOrigin, ws_connect


def _keepalive_load(port: int, stop: threading.Event, results: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.connect()
    sock = conn.sock
    count = 0
    try:
        while not stop.is_set():
            conn.request("GET", "/", headers={"Host": "app.example.org"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                results.append(f"status {response.status}")
            count += 1
        if conn.sock is not sock:
            results.append("reconnected")
    except Exception as exc:  # every failure is a finding: collect it, never raise here
        results.append(repr(exc))
    finally:
        conn.close()
    results.append(f"ok {count}")


def test_twenty_swaps_under_load_fail_nothing_and_close_nothing(
    make_proxy: Callable[..., ProxyRunner],
    make_origin: Callable[[str], Origin],
    ws_origin: WsOrigin,
) -> None:
    a, b, c = make_origin("a"), make_origin("b"), make_origin("c")
    runner = make_proxy()
    ws_proxy = proxy_for("ws.example.org", ws_origin.backend())  # the same object throughout
    runner.route(proxy_for("app.example.org", a.backend(), b.backend()), ws_proxy)
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(ws_connect(runner.port, host="ws.example.org")) for _ in range(3)
        ]
        _swap_under_load(runner, (a, b, c), ws_proxy, sockets)
    assert a.seen and b.seen and c.seen


def _swap_under_load(
    runner: ProxyRunner,
    origins: tuple[Origin, Origin, Origin],
    ws_proxy: Proxy,
    sockets: list[ClientConnection],
) -> None:
    a, b, c = origins
    stop = threading.Event()
    results: list[str] = []
    threads = [
        threading.Thread(target=_keepalive_load, args=(runner.port, stop, results))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    sets = [(a, b), (a, b, c), (c,), (b, c), (a,)]
    for i in range(20):
        backends = [o.backend() for o in sets[i % len(sets)]]
        others = [proxy_for(f"other{j}.example.org", c.backend()) for j in range(i % 4)]
        app = proxy_for("app.example.org", *backends, algorithm=ALGORITHMS[i % len(ALGORITHMS)])
        runner.route(app, ws_proxy, *others)
        for n, ws in enumerate(sockets):
            ws.send(f"swap {i} socket {n}")
            assert ws.recv(timeout=5) == f"swap {i} socket {n}"
    stop.set()
    for thread in threads:
        thread.join(10)
    failures = [r for r in results if not r.startswith("ok ")]
    assert failures == []
    assert len(results) == 8 and all(int(r.split()[1]) > 0 for r in results)
    for ws in sockets:
        ws.send("still open")
        assert ws.recv(timeout=5) == "still open"
