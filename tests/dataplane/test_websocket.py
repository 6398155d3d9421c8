"""WebSocket tunnels over real sockets: a ``websockets`` server behind, its client in front."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed

from portway.model import Backend, Timeouts
from tests.dataplane.conftest import (
    H_APP,
    Origin,
    ProxyRunner,
    proxy_for,
    raw,
    status_of,
)
from tests.dataplane.wsorigin import WsOrigin, ws_connect

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture
def ws_proxy(make_proxy: Callable[..., ProxyRunner], ws_origin: WsOrigin) -> ProxyRunner:
    runner = make_proxy()
    runner.route(
        proxy_for("app.example.org", ws_origin.backend(), timeouts=Timeouts(websocket_idle=0.6))
    )
    return runner


def handshake(*extra: bytes, method: bytes = b"GET", version: bytes = b"HTTP/1.1") -> bytes:
    lines = [method + b" /chat " + version, b"Host: app.example.org", *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


VALID = (
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: " + KEY,
    b"Sec-WebSocket-Version: 13",
)


def test_websocket_echoes_many_messages(ws_proxy: ProxyRunner) -> None:
    with ws_connect(ws_proxy.port) as ws:
        for i in range(500):
            ws.send(f"message {i}")
            assert ws.recv() == f"message {i}"
        ws.send(b"\x00\x01binary")
        assert ws.recv() == b"\x00\x01binary"


def test_large_websocket_messages_pass_both_ways(ws_proxy: ProxyRunner) -> None:
    big = bytes(range(256)) * (8 * 1024 * 4)  # 8 MiB: far past every socket buffer
    with ws_connect(ws_proxy.port) as ws:
        for _ in range(2):
            ws.send(big)
            assert ws.recv() == big


def test_backend_close_code_reaches_the_client(ws_proxy: ProxyRunner) -> None:
    with ws_connect(ws_proxy.port, "/close") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001
    assert closed.value.rcvd.reason == "bye from backend"


def test_client_close_code_reaches_the_backend_and_tunnel_ends(
    ws_proxy: ProxyRunner, ws_origin: WsOrigin
) -> None:
    with ws_connect(ws_proxy.port) as ws:
        ws.send("hi")
        assert ws.recv() == "hi"
        ws.close(4002, "client leaves")
        assert ws.close_code == 4002  # the backend echoed our close frame back through us
    deadline = time.monotonic() + 3
    while ws_proxy.on_loop(lambda: ws_proxy.dp.open_connections) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ws_proxy.on_loop(lambda: ws_proxy.dp.open_connections) == 0


def test_idle_websocket_is_closed_after_websocket_idle(
    ws_proxy: ProxyRunner, ws_origin: WsOrigin
) -> None:
    with ws_connect(ws_proxy.port, "/silent") as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        waited = time.monotonic() - started
    assert 0.5 <= waited < 3.0


def test_traffic_keeps_a_websocket_open_past_the_idle_timeout(ws_proxy: ProxyRunner) -> None:
    with ws_connect(ws_proxy.port) as ws:
        for _ in range(8):  # 1.6 s of traffic with a 0.6 s idle timeout
            time.sleep(0.2)
            ws.send("ping")
            assert ws.recv() == "ping"


@pytest.mark.parametrize(
    "request_bytes",
    [
        handshake(*VALID, method=b"POST"),
        handshake(*VALID, version=b"HTTP/1.0"),
        handshake(b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Version: 13"),
        handshake(
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: " + KEY,
            b"Sec-WebSocket-Version: 8",
        ),
        handshake(
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: " + base64.b64encode(b"short"),
            b"Sec-WebSocket-Version: 13",
        ),
        handshake(
            b"Upgrade: websocket",
            b"Connection: keep-alive",
            b"Sec-WebSocket-Key: " + KEY,
            b"Sec-WebSocket-Version: 13",
        ),
    ],
    ids=["post", "http10", "no-key", "version-8", "short-key", "no-connection-upgrade"],
)
def test_invalid_websocket_handshake_gets_400_and_never_reaches_backend(
    make_proxy: Callable[..., ProxyRunner], origin: Origin, request_bytes: bytes
) -> None:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    data, closed = raw(runner.port, request_bytes)
    assert status_of(data) == 400 and closed
    assert origin.seen == []


def test_h2c_upgrade_is_stripped_and_served_as_plain_http(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    data, _ = raw(
        runner.port,
        b"GET /h2 HTTP/1.1\r\n" + H_APP + b"Connection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    )
    assert status_of(data) == 200
    assert origin.seen[0].header("Upgrade") is None
    assert origin.seen[0].header("HTTP2-Settings") is None


def test_websocket_handshake_to_plain_http_backend_is_relayed_without_tunnel(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    data, closed = raw(runner.port, handshake(*VALID))
    assert status_of(data) == 200 and closed  # the HTTP answer, then the connection ends
    assert origin.seen[0].header("Upgrade") == "websocket"  # forwarded with Upgrade kept
    assert origin.seen[0].header("Sec-WebSocket-Key") == KEY.decode()


def _one_shot_backend(answer: bytes) -> tuple[int, list[bytes]]:
    """A backend that reads one request head, sends ``answer``, then echoes raw bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            got.append(head)
            conn.sendall(answer)
            conn.settimeout(2)
            try:
                while data := conn.recv(4096):
                    got.append(data)
            except OSError:
                pass
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], got


def test_backend_101_with_wrong_accept_gets_502_and_no_tunnel(
    make_proxy: Callable[..., ProxyRunner],
) -> None:
    port, got = _one_shot_backend(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: d3JvbmcgYWNjZXB0IHZhbHVlIQ==\r\n\r\n"
    )
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", Backend(id="b", address="127.0.0.1", port=port)))
    data, _ = raw(runner.port, handshake(*VALID) + b"frame bytes")
    assert status_of(data) == 502
    assert all(b"frame bytes" not in part for part in got)  # nothing crossed into a tunnel


def test_backend_101_with_right_accept_tunnels_raw_bytes(
    make_proxy: Callable[..., ProxyRunner],
) -> None:
    accept = base64.b64encode(hashlib.sha1(KEY + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    port, got = _one_shot_backend(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\nfirst server bytes"
    )
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", Backend(id="b", address="127.0.0.1", port=port)))
    with socket.create_connection(("127.0.0.1", runner.port), timeout=3) as sock:
        sock.sendall(handshake(*VALID) + b"early client bytes")
        answer = b""
        while b"first server bytes" not in answer:
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: " + accept in answer
        sock.sendall(b"later client bytes")
        time.sleep(0.2)
    received = b"".join(got[1:])
    assert received == b"early client bytes" + b"later client bytes"
