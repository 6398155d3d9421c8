"""The built-in plane's own routing cases over real sockets: a missing Host, spreading,
draining, and swaps on an open connection. (Host, wildcard and path-prefix routing, the
same on every data plane: tests/conformance/test_routing.py.)"""

from __future__ import annotations

import http.client
from collections.abc import Callable

import httpx

from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for, raw, status_of


def get(port: int, host: str, path: str = "/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}, timeout=5)


def test_missing_host_gets_400_and_close(proxy: ProxyRunner, origin: Origin) -> None:
    data, closed = raw(proxy.port, b"GET / HTTP/1.1\r\n\r\n")
    assert status_of(data) == 400 and closed
    data, closed = raw(proxy.port, b"GET / HTTP/1.0\r\n\r\n")
    assert status_of(data) == 400 and closed
    assert origin.seen == []


def test_round_robin_spreads_requests_over_backends(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    a, b, c = make_origin("a"), make_origin("b"), make_origin("c")
    runner = make_proxy()
    runner.route(proxy_for("rr.example.org", a.backend(), b.backend(), c.backend()))
    with httpx.Client(
        base_url=f"http://127.0.0.1:{runner.port}", headers={"Host": "rr.example.org"}
    ) as client:
        names = [client.get("/").text.split()[0] for _ in range(9)]
    assert sorted(names) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert names[:3] != names[3:3] and len(set(names[:3])) == 3


def test_proxy_without_usable_backend_gets_503_with_retry_after(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    runner.route(
        proxy_for("empty.example.org"), proxy_for("drained.example.org", origin.backend(weight=0))
    )
    for host in ("empty.example.org", "drained.example.org"):
        response = get(runner.port, host)
        assert response.status_code == 503
        assert response.headers["retry-after"]
    assert origin.seen == []


def test_snapshot_swap_applies_to_the_next_request(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    old, new = make_origin("old"), make_origin("new")
    runner = make_proxy()
    runner.route(proxy_for("s.example.org", old.backend()))
    conn = http.client.HTTPConnection("127.0.0.1", runner.port, timeout=5)
    conn.request("GET", "/", headers={"Host": "s.example.org"})
    assert conn.getresponse().read().startswith(b"old")
    runner.route(proxy_for("s.example.org", new.backend()))
    assert runner.dp.applied_version == 2
    conn.request("GET", "/", headers={"Host": "s.example.org"})  # same client connection
    assert conn.getresponse().read().startswith(b"new")
    runner.route()
    conn.request("GET", "/", headers={"Host": "s.example.org"})
    assert conn.getresponse().status == 404
    conn.close()


def test_balancer_state_survives_a_swap_with_same_proxy(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    runner = make_proxy()
    runner.route(proxy_for("k.example.org", a.backend(), b.backend()))
    first = get(runner.port, "k.example.org").text.split()[0]
    runner.route(proxy_for("k.example.org", a.backend(), b.backend()))  # new objects, same id
    second = get(runner.port, "k.example.org").text.split()[0]
    assert {first, second} == {"a", "b"}
