"""Per-client rate limits and banned ranges in the built-in data plane, over loopback
from two source addresses (127.0.0.2 and 127.0.0.3, bound before connecting)."""

from __future__ import annotations

import dataclasses
import http.client
import socket
from collections.abc import Callable

from portway.dataplane import DataPlaneSettings
from portway.model import Limits
from tests.dataplane.conftest import FAST, Origin, ProxyRunner, proxy_for

A, B = "127.0.0.2", "127.0.0.3"


class BoundConnection(http.client.HTTPConnection):
    """An HTTP connection from a chosen loopback source address."""

    def __init__(self, port: int, source: str) -> None:
        super().__init__("127.0.0.1", port, timeout=5, source_address=(source, 0))


def get(
    port: int, source: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = BoundConnection(port, source)
    try:
        conn.request(method, "/", headers={"Host": "app.example.org", **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def serve(
    make_proxy: Callable[..., ProxyRunner],
    origin: Origin,
    limits: Limits,
    settings: DataPlaneSettings = FAST,
) -> ProxyRunner:
    runner = make_proxy(settings)
    runner.route(proxy_for("app.example.org", origin.backend(), limits=limits))
    return runner


def test_a_client_over_its_rate_gets_429_while_another_is_unaffected(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = serve(make_proxy, origin, Limits(rate=0.5, burst=2))
    assert [get(runner.port, A)[0] for _ in range(2)] == [200, 200]
    status, headers, body = get(runner.port, A)
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 2  # the next token is 2 s away
    assert b"429 Too Many Requests" in body and b"portway" in body
    assert [get(runner.port, B)[0] for _ in range(2)] == [200, 200]
    assert len(origin.seen) == 4  # the refused request never reached the backend
    refused = runner.on_loop(lambda: dict(runner.dp.metrics.refused))
    assert refused == {("p", "rate"): 1}


def test_a_head_request_over_the_rate_gets_the_head_only(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = serve(make_proxy, origin, Limits(rate=0.1, burst=1))
    assert get(runner.port, A, method="HEAD")[0] == 200
    status, headers, body = get(runner.port, A, method="HEAD")
    assert (status, body) == (429, b"")
    assert int(headers["Retry-After"]) in range(9, 11)


def test_the_node_rate_applies_to_proxies_without_their_own(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    settings = dataclasses.replace(FAST, rate_limit=0.2, rate_burst=1)
    runner = serve(make_proxy, origin, Limits(), settings)
    assert [get(runner.port, A)[0] for _ in range(2)] == [200, 429]
    assert get(runner.port, B)[0] == 200
    own = serve(make_proxy, origin, Limits(rate=100), settings)  # its own rate wins
    assert [get(own.port, A)[0] for _ in range(5)] == [200] * 5


def test_a_banned_range_gets_403_and_is_counted(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = serve(make_proxy, origin, Limits(deny=(f"{A}/32",)))
    status, _, body = get(runner.port, A)
    assert status == 403 and b"403 Forbidden" in body
    assert get(runner.port, B)[0] == 200
    assert len(origin.seen) == 1
    assert runner.on_loop(lambda: dict(runner.dp.metrics.refused)) == {("p", "deny"): 1}


def test_the_node_banned_ranges_hold_on_every_proxy(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    settings = dataclasses.replace(FAST, deny_clients=("127.0.0.2/31",))
    runner = serve(make_proxy, origin, Limits(), settings)
    assert get(runner.port, A)[0] == 403
    assert get(runner.port, B)[0] == 403  # 127.0.0.2/31 holds .2 and .3
    assert get(runner.port, "127.0.0.4")[0] == 200


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    settings = dataclasses.replace(FAST, trusted_proxies=("127.0.0.2/32",))
    limits = Limits(rate=0.1, burst=1, deny=("203.0.113.66/32",))
    runner = serve(make_proxy, origin, limits, settings)
    one = {"X-Forwarded-For": "198.51.100.1"}
    two = {"X-Forwarded-For": "6.6.6.6, 198.51.100.2"}  # the left hop is the client's lie
    assert [get(runner.port, A, one)[0] for _ in range(2)] == [200, 429]
    assert get(runner.port, A, two)[0] == 200  # another client behind the same peer
    assert get(runner.port, A, {"X-Forwarded-For": "203.0.113.66"})[0] == 403
    # An untrusted peer's X-Forwarded-For is its own claim: it counts as the peer.
    assert get(runner.port, B, one)[0] == 200
    assert get(runner.port, B, {"X-Forwarded-For": "198.51.100.9"})[0] == 429


def test_a_proxy_without_limits_has_no_guard(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = serve(make_proxy, origin, Limits())
    assert get(runner.port, A)[0] == 200
    plans = runner.on_loop(lambda: [p.guard for p in runner.dp.plans._plans.values()])
    assert plans == [None]


def test_limits_survive_a_snapshot_swap_that_keeps_the_rate(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = serve(make_proxy, origin, Limits(rate=0.1, burst=1))
    assert get(runner.port, A)[0] == 200
    runner.route(proxy_for("app.example.org", origin.backend(), limits=Limits(rate=0.1, burst=1)))
    assert get(runner.port, A)[0] == 429  # a new plan, the same bucket


def test_loopback_sources_are_real(make_proxy: Callable[..., ProxyRunner], origin: Origin) -> None:
    """The fixture's premise: the origin sees each bound source as a distinct peer."""
    runner = serve(make_proxy, origin, Limits())
    get(runner.port, A)
    get(runner.port, B)
    assert [s.header("X-Forwarded-For") for s in origin.seen] == [A, B]
    with socket.socket() as sock:
        sock.bind((A, 0))
        assert sock.getsockname()[0] == A
