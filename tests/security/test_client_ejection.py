"""A client must not be able to get a healthy backend ejected (issue 7, defect 6).

The attack: a few POSTs that declare a body and stop sending it. The backend, a real
server with its own body-read timeout, gives up on them (closes, or answers 408/400/5xx);
Portway used to count each as a backend failure, eject the backend after three and
answer everyone ``503 No backend available`` for the back-off.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from portway.dataplane import DataPlaneSettings
from portway.model import Backend, Timeouts
from tests.dataplane.conftest import H_APP, ProxyRunner, proxy_for, status_of
from tests.dataplane.conftest import make_proxy as make_proxy  # the in-process data plane
from tests.http_server import TestHTTPServer

HOST = {"Host": "app.example.org"}
STALLED = b"POST /upload HTTP/1.1\r\n" + H_APP + b"Content-Length: 100\r\n\r\nab"
BODY_TIMEOUT = 0.3  # the backend's own limit on waiting for request bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    """http.server with a socket timeout, as deployed behind proxies: a body read that
    stalls raises TimeoutError. ``on_stall`` says what the server does then: ``None``
    lets http.server do its own thing (log and close without an answer); a status
    answers it and closes, as nginx (408), strict parsers (400), a WSGI app that raised
    (500) or a streaming proxy in front of the app (502) do."""

    protocol_version = "HTTP/1.1"
    timeout = BODY_TIMEOUT
    on_stall: int | None = None
    name = ""

    def log_message(self, *args: Any) -> None:
        pass

    def log_error(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(200, self.name.encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            if self.on_stall is None:
                raise  # http.server: "Request timed out", connection closed
            self.close_connection = True
            self._answer(self.on_stall, b"body timeout", close=True)
            return
        self._answer(200, b"%s got %d" % (self.name.encode(), len(body)))

    def _answer(self, status: int, body: bytes, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def make_backend() -> Iterator[Callable[..., Backend]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def make(name: str, on_stall: int | None = None, **handler: Any) -> Backend:
        attrs = {"name": name, "on_stall": on_stall, **handler}
        server = TestHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), attrs))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return Backend(id=name, address="127.0.0.1", port=server.server_address[1])

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def stall(port: int, count: int, *, close_early: bool = False) -> list[bytes]:
    """``count`` clients each send a head declaring 100 body bytes and only 2 of them;
    returns what each got back (``b""``: closed without an answer)."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(STALLED)
        socks.append(sock)
        time.sleep(0.02)  # in order, so that the balancer spreads them predictably
    answers = []
    for sock in socks:
        with sock:
            if close_early:
                answers.append(b"")
                continue
            data = b""
            try:
                while part := sock.recv(65536):
                    data += part
            except (ConnectionResetError, TimeoutError):
                pass
            answers.append(data)
    return answers


def gets(runner: ProxyRunner, n: int) -> list[tuple[int, str]]:
    with httpx.Client(timeout=5) as client:
        responses = [client.get(f"http://127.0.0.1:{runner.port}/", headers=HOST) for _ in range(n)]
    return [(r.status_code, r.text) for r in responses]


STALL_REACTIONS = [None, 408, 400, 500, 502]


@pytest.mark.parametrize("on_stall", STALL_REACTIONS, ids=lambda s: f"backend-{s or 'closes'}")
def test_stalled_bodies_do_not_eject_the_only_backend(
    make_proxy: Callable[..., ProxyRunner],
    make_backend: Callable[..., Backend],
    on_stall: int | None,
) -> None:
    runner = make_proxy(DataPlaneSettings())  # default passive settings
    runner.route(proxy_for("app.example.org", make_backend("one", on_stall)))
    answers = stall(runner.port, 3)
    expected = 502 if on_stall is None else on_stall
    assert [status_of(a) for a in answers] == [expected] * 3  # the attack really ran
    assert gets(runner, 1) == [(200, "one")]  # another client is still served
    assert runner.on_loop(runner.dp.ejected) == frozenset()


@pytest.mark.parametrize("on_stall", STALL_REACTIONS, ids=lambda s: f"backend-{s or 'closes'}")
def test_stalled_bodies_count_against_no_backend_of_several(
    make_proxy: Callable[..., ProxyRunner],
    make_backend: Callable[..., Backend],
    on_stall: int | None,
) -> None:
    runner = make_proxy(DataPlaneSettings())
    runner.route(
        proxy_for("app.example.org", make_backend("a", on_stall), make_backend("b", on_stall))
    )
    stall(runner.port, 6)  # three for each backend: enough to eject both, if they counted
    assert runner.on_loop(runner.dp.ejected) == frozenset()
    assert sorted(gets(runner, 4)) == [(200, "a"), (200, "a"), (200, "b"), (200, "b")]


def test_client_closing_mid_body_counts_against_no_backend(
    make_proxy: Callable[..., ProxyRunner], make_backend: Callable[..., Backend]
) -> None:
    runner = make_proxy(DataPlaneSettings())
    runner.route(proxy_for("app.example.org", make_backend("a"), make_backend("b")))
    stall(runner.port, 6, close_early=True)
    time.sleep(BODY_TIMEOUT + 0.2)
    assert runner.on_loop(runner.dp.ejected) == frozenset()
    assert sorted(gets(runner, 2)) == [(200, "a"), (200, "b")]


def test_portway_body_timeout_counts_against_no_backend(
    make_proxy: Callable[..., ProxyRunner], make_backend: Callable[..., Backend]
) -> None:
    # The backends wait longer than Portway does: Portway's own idle timeout ends the
    # exchange with a 408, the client's fault.
    runner = make_proxy(DataPlaneSettings(read_timeout=0.4))
    a, b = make_backend("a", timeout=5.0), make_backend("b", timeout=5.0)
    runner.route(proxy_for("app.example.org", a, b, timeouts=Timeouts(idle=0.4)))
    answers = stall(runner.port, 6)
    assert [status_of(x) for x in answers] == [408] * 6
    assert runner.on_loop(runner.dp.ejected) == frozenset()
    assert sorted(gets(runner, 2)) == [(200, "a"), (200, "b")]
