"""Backends that refuse, stall or break framing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from portway.dataplane import DataPlaneSettings
from portway.model import Backend
from tests.dataplane.conftest import H_APP, Origin, ProxyRunner, proxy_for, raw, status_of


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str = "/") -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}{path}", headers={"Host": "app.example.org"}, timeout=5
    )


def test_refused_backend_gets_502_page(make_proxy: Callable[..., ProxyRunner]) -> None:
    runner = make_proxy()
    runner.route(
        proxy_for("app.example.org", Backend(id="dead", address="127.0.0.1", port=free_port()))
    )
    response = get(runner.port)
    assert response.status_code == 502
    assert "Bad Gateway" in response.text


def test_stalled_backend_gets_504_page(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(DataPlaneSettings(read_timeout=0.4))
    runner.route(proxy_for("app.example.org", origin.backend()))
    response = get(runner.port, "/slow")
    assert response.status_code == 504
    assert "Gateway Timeout" in response.text


def test_backend_that_never_accepts_times_out_connecting_with_502(
    make_proxy: Callable[..., ProxyRunner], silent_port: int
) -> None:
    """A connect timeout is answered like a refused connection (docs/running.md)."""
    runner = make_proxy(DataPlaneSettings(connect_timeout=0.3))
    runner.route(
        proxy_for("app.example.org", Backend(id="full", address="127.0.0.1", port=silent_port))
    )
    started = time.monotonic()
    assert get(runner.port).status_code == 502
    # The timeout, not a refusal (which answers within milliseconds). libuv schedules
    # timers from its cached, millisecond clock, so the timer may fire a few ms before
    # 0.3 s of this process's clock have passed (0.295 s seen under load).
    assert time.monotonic() - started >= 0.25


class RawOrigin:
    """A backend that answers every request with fixed bytes; counts connections."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                try:
                    part = conn.recv(65536)
                except OSError:
                    return
                if not part:
                    return
                buf += part
                while b"\r\n\r\n" in buf:
                    _, _, buf = buf.partition(b"\r\n\r\n")
                    conn.sendall(self.answer)


@pytest.fixture
def raw_origin() -> Iterator[Callable[[bytes], RawOrigin]]:
    made: list[RawOrigin] = []

    def make(answer: bytes) -> RawOrigin:
        made.append(RawOrigin(answer))
        return made[-1]

    yield make
    for origin in made:
        origin.sock.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"garbage\r\n\r\n",
    ],
    ids=["cl_te", "two_cl", "te_list", "te_gzip", "obs_fold", "unasked_101", "garbage"],
)
def test_ambiguous_upstream_response_gets_502_and_connection_is_not_reused(
    answer: bytes, make_proxy: Callable[..., ProxyRunner], raw_origin: Callable[[bytes], RawOrigin]
) -> None:
    origin = raw_origin(answer)
    runner = make_proxy()
    runner.route(
        proxy_for("app.example.org", Backend(id="bad", address="127.0.0.1", port=origin.port))
    )
    for _ in range(2):
        data, _ = raw(runner.port, b"GET / HTTP/1.1\r\n" + H_APP + b"Connection: close\r\n\r\n")
        assert status_of(data) == 502
    assert origin.connections == 2


def test_backend_closing_pooled_connection_is_retried_transparently(
    make_proxy: Callable[..., ProxyRunner], raw_origin: Callable[[bytes], RawOrigin]
) -> None:
    # Answers keep-alive but closes right after: the pooled connection is dead next time.
    origin = raw_origin(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    runner = make_proxy()
    runner.route(
        proxy_for("app.example.org", Backend(id="b", address="127.0.0.1", port=origin.port))
    )
    assert get(runner.port).text == "ok"
    origin.sock.close()
    assert get(runner.port).text == "ok"  # the same pooled connection still works
