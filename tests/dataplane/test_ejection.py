"""Passive ejection end to end: a backend that really fails is taken out, within the
bound (``--passive-max-ejection-percent``), and active verdicts still apply on top."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from portway.dataplane import DataPlaneSettings
from portway.model import Backend, Timeouts
from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for
from tests.dataplane.test_health import RawBackend

HOST = {"Host": "app.example.org"}
PID = "app.example.org/"
OOPS = b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops"


def raw_backend(name: str, raw: RawBackend) -> Backend:
    return Backend(id=name, address="127.0.0.1", port=raw.port)


def statuses(runner: ProxyRunner, n: int, method: str = "GET") -> list[int]:
    with httpx.Client(timeout=5) as client:
        url = f"http://127.0.0.1:{runner.port}/"
        return [
            client.request(method, url, headers=HOST, content=b"x" * 10).status_code
            for _ in range(n)
        ]


class Silent:
    """Accepts connections, reads what comes and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


def test_a_backend_that_closes_on_every_whole_request_is_ejected(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(DataPlaneSettings())
    closer = RawBackend(b"")
    runner.route(proxy_for("app.example.org", raw_backend("closer", closer), origin.backend()))
    got = statuses(runner, 8, "POST")
    assert got.count(502) == 3  # its body sent, a POST is never retried
    assert runner.on_loop(runner.dp.ejected) == {(PID, "closer")}
    assert statuses(runner, 4, "POST") == [200] * 4
    assert len(closer.requests) == 3


def test_a_backend_with_broken_framing_is_ejected(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(DataPlaneSettings())
    broken = RawBackend(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
    runner.route(proxy_for("app.example.org", raw_backend("broken", broken), origin.backend()))
    assert statuses(runner, 8).count(502) == 3
    assert runner.on_loop(runner.dp.ejected) == {(PID, "broken")}


def test_a_backend_silent_after_the_whole_request_is_ejected(
    make_proxy: Callable[..., ProxyRunner], origin: Origin, silent: Silent
) -> None:
    runner = make_proxy()  # FAST: a sweep every 0.25 s
    timeouts = Timeouts(first_byte=0.3)
    silent_backend = Backend(id="silent", address="127.0.0.1", port=silent.port)
    runner.route(proxy_for("app.example.org", silent_backend, origin.backend(), timeouts=timeouts))
    assert statuses(runner, 6).count(504) == 3
    assert runner.on_loop(runner.dp.ejected) == {(PID, "silent")}


def test_when_every_backend_fails_only_half_are_ejected_and_none_is_refused(
    make_proxy: Callable[..., ProxyRunner],
) -> None:
    runner = make_proxy(DataPlaneSettings())
    a, b = RawBackend(OOPS), RawBackend(OOPS)
    runner.route(proxy_for("app.example.org", raw_backend("a", a), raw_backend("b", b)))
    got = statuses(runner, 12)
    assert set(got) == {500}  # the backends' own answers, never "no backend available"
    assert len(runner.on_loop(runner.dp.ejected)) == 1


def test_the_bound_follows_the_setting(make_proxy: Callable[..., ProxyRunner]) -> None:
    runner = make_proxy(DataPlaneSettings(passive_max_ejection_percent=100))
    backends = [RawBackend(OOPS) for _ in range(3)]
    runner.route(
        proxy_for("app.example.org", *(raw_backend(f"b{i}", r) for i, r in enumerate(backends)))
    )
    assert set(statuses(runner, 15)) == {500}
    assert len(runner.on_loop(runner.dp.ejected)) == 2  # 100 %, but never the last one


def test_an_ejected_backend_serves_again_when_active_checks_take_the_rest_down(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    runner = make_proxy(DataPlaneSettings())
    flaky = RawBackend(b"")
    good = make_origin("good")
    runner.route(proxy_for("app.example.org", raw_backend("flaky", flaky), good.backend()))
    statuses(runner, 8, "POST")
    assert runner.on_loop(runner.dp.ejected) == {(PID, "flaky")}
    runner.on_loop(lambda: runner.dp.set_health(frozenset({(PID, "good")})))
    assert statuses(runner, 2, "POST") == [502, 502]  # flaky again, not 503
    assert len(flaky.requests) == 5
    runner.on_loop(lambda: runner.dp.set_health(frozenset({(PID, "good"), (PID, "flaky")})))
    assert statuses(runner, 1) == [503]
