"""``--healthz-path``: the data plane answers a load balancer's probe itself, on any host
(issue 10 §5), and says 503 once the node drains so the balancer moves away first."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from portway.dataplane import DataPlaneSettings
from tests.dataplane.conftest import FAST, H_APP, Origin, ProxyRunner, proxy_for, raw, status_of

PATH = "/.well-known/healthz"
_CLOSE = b"\r\nConnection: close\r\n\r\n"


def probe(port: int, host: bytes = b"anything.test", method: bytes = b"GET") -> bytes:
    data, _ = raw(port, method + b" " + PATH.encode() + b" HTTP/1.1\r\nHost: " + host + _CLOSE)
    return data


def test_healthz_answers_200_on_any_host_without_reaching_a_backend(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(dataclasses.replace(FAST, healthz_path=PATH))
    runner.route(proxy_for("app.example.org", origin.backend()))
    for host in (b"anything.test", b"app.example.org"):
        data = probe(runner.port, host)
        assert status_of(data) == 200 and data.endswith(b"\r\n\r\nok\n"), data
        assert b"Cache-Control: no-store" in data
    assert status_of(probe(runner.port, method=b"HEAD")) == 200
    assert origin.seen == []
    # Other paths of the proxy are routed as before, and so is the path when it is unset.
    data, _ = raw(runner.port, b"GET /.well-known/other HTTP/1.1\r\n" + H_APP + _CLOSE[2:])
    assert status_of(data) == 200 and len(origin.seen) == 1
    plain = make_proxy(DataPlaneSettings())
    plain.route(proxy_for("app.example.org", origin.backend()))
    assert status_of(probe(plain.port, b"app.example.org")) == 200 and len(origin.seen) == 2
    assert status_of(probe(plain.port)) == 404


def test_healthz_says_503_while_the_node_drains(
    make_proxy: Callable[..., ProxyRunner],
) -> None:
    runner = make_proxy(dataclasses.replace(FAST, healthz_path=PATH))
    runner.dp.draining = True
    data = probe(runner.port)
    assert status_of(data) == 503 and b"Connection: close" in data


def test_healthz_keeps_the_connection_alive(make_proxy: Callable[..., ProxyRunner]) -> None:
    runner = make_proxy(dataclasses.replace(FAST, healthz_path=PATH))
    one = b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: lb.test\r\n"
    data, _ = raw(runner.port, one + b"\r\n" + one + b"Connection: close\r\n\r\n")
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2 and data.count(b"Connection: close") == 1
