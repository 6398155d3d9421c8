"""Active health verdicts, passive ejection, retries on another backend."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import httpx

from portway.dataplane import DataPlaneSettings
from portway.model import Backend
from tests.dataplane.conftest import FAST, H_APP, Origin, ProxyRunner, proxy_for, raw, status_of
from tests.dataplane.test_failures import free_port

HOST = {"Host": "app.example.org"}
PID = "app.example.org/"


def get(client: httpx.Client, port: int, path: str = "/") -> httpx.Response:
    return client.get(f"http://127.0.0.1:{port}{path}", headers=HOST)


def test_backends_declared_down_get_no_requests_until_back_up(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", a.backend(), b.backend()))
    with httpx.Client(timeout=5) as client:
        runner.on_loop(lambda: runner.dp.set_health(frozenset({(PID, "a")})))
        assert {get(client, runner.port).text[0] for _ in range(6)} == {"b"}
        runner.on_loop(lambda: runner.dp.set_health(frozenset()))
        assert {get(client, runner.port).text[0] for _ in range(6)} == {"a", "b"}


def test_all_backends_down_gets_503_with_retry_after(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    runner.on_loop(lambda: runner.dp.set_health(frozenset({(PID, "one")})))
    with httpx.Client(timeout=5) as client:
        response = get(client, runner.port)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert origin.seen == []


def test_backend_answering_5xx_is_ejected_then_returns_after_backoff(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    bad = RawBackend(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    good = make_origin("good")
    settings = DataPlaneSettings(
        connect_timeout=1.0,
        read_timeout=1.0,
        client_header_timeout=1.0,
        passive_failures=3,
        passive_backoff=0.5,
    )
    runner = make_proxy(settings)
    runner.route(
        proxy_for(
            "app.example.org", Backend(id="bad", address="127.0.0.1", port=bad.port), good.backend()
        )
    )
    with httpx.Client(timeout=5) as client:
        statuses = [get(client, runner.port).status_code for _ in range(10)]
        assert statuses.count(500) == 3  # round robin: bad answered 3 times, then ejected
        assert runner.on_loop(runner.dp.ejected) == {(PID, "bad")}
        time.sleep(0.8)  # the back-off ends
        assert runner.on_loop(runner.dp.ejected) == frozenset()
        statuses = [get(client, runner.port).status_code for _ in range(4)]
        assert 500 in statuses  # a candidate again


def test_every_get_succeeds_with_one_dead_backend(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    dead = Backend(id="dead", address="127.0.0.1", port=free_port())
    runner.route(proxy_for("app.example.org", dead, origin.backend()))
    with httpx.Client(timeout=5) as client:
        assert [get(client, runner.port).status_code for _ in range(20)] == [200] * 20
    assert runner.on_loop(runner.dp.ejected) == {(PID, "dead")}


def test_post_to_dead_backend_is_retried_on_another_before_its_body_is_sent(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    dead = Backend(id="dead", address="127.0.0.1", port=free_port())
    runner.route(proxy_for("app.example.org", dead, origin.backend(), algorithm="round_robin"))
    with httpx.Client(timeout=5) as client:
        for _ in range(2):  # one of the two goes to the dead backend first
            response = client.post(
                f"http://127.0.0.1:{runner.port}/form", headers=HOST, content=b"x" * 5000
            )
            assert response.status_code == 200
    assert [s.body_len for s in origin.seen] == [5000, 5000]


class RawBackend:
    """Accepts connections and answers each with fixed bytes after reading the request
    (head and declared body); ``answer=b""`` closes without a word. Counts requests."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        # A peer may reset instead of closing (HAProxy ends its checks so): same end.
        with conn, contextlib.suppress(ConnectionResetError):
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    part = conn.recv(65536)
                    if not part:
                        return
                    data += part
                head, _, data = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(data) < length:
                    data += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + data[:length])
                data = data[length:]
                if not self.answer:
                    return
                conn.sendall(self.answer)


def test_post_whose_body_was_sent_is_never_retried(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    closer = RawBackend(b"")
    runner = make_proxy()
    runner.route(
        proxy_for(
            "app.example.org",
            Backend(id="closer", address="127.0.0.1", port=closer.port),
            origin.backend(),
        )
    )
    body = b"y" * 3000
    data, _ = raw(
        runner.port,
        b"POST /pay HTTP/1.1\r\n" + H_APP + b"Content-Length: 3000\r\n\r\n" + body,
        timeout=1.0,
    )
    assert status_of(data) == 502
    assert len(closer.requests) == 1 and closer.requests[0].endswith(body)
    assert origin.seen == []  # not sent again anywhere


def test_slow_connect_is_a_502_after_the_proxy_connect_timeout(
    make_proxy: Callable[..., ProxyRunner], silent_port: int
) -> None:
    from portway.model import Timeouts

    runner = make_proxy(FAST)
    runner.route(
        proxy_for(
            "app.example.org",
            Backend(id="far", address="127.0.0.1", port=silent_port),
            timeouts=Timeouts(connect=0.3),
        )
    )
    started = time.monotonic()
    with httpx.Client(timeout=5) as client:
        assert get(client, runner.port).status_code == 502
    assert 0.3 <= time.monotonic() - started < 1.5
