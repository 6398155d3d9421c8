"""WebSocket upgrades on every data plane, over HTTP and HTTPS."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest
import trustme
from websockets.sync.client import connect

from tests.conformance.conftest import Plane
from tests.dataplane.conftest import proxy_for
from tests.dataplane.wsorigin import WsOrigin, ws_connect


@pytest.fixture
def ws(plane: Plane, ws_origin: WsOrigin) -> Iterator[WsOrigin]:
    plane.route(
        proxy_for("app.example.org", ws_origin.backend()),
        proxy_for("ws.portway.test", ws_origin.backend()),
    )
    yield ws_origin


@pytest.mark.feature("websockets")
def test_websocket_upgrade_is_tunnelled(plane: Plane, ws: WsOrigin) -> None:
    with ws_connect(plane.port) as conn:
        for i in range(50):
            conn.send(f"message {i}")
            assert conn.recv(timeout=5) == f"message {i}"
        conn.send(b"\x00\x01binary")
        assert conn.recv(timeout=5) == b"\x00\x01binary"


@pytest.mark.feature("websockets")
def test_websocket_over_tls(plane: Plane, ws: WsOrigin, ca: trustme.CA) -> None:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    sock = socket.create_connection(("127.0.0.1", plane.tls_port), timeout=5)
    with connect("wss://ws.portway.test/", sock=sock, ssl=ctx, open_timeout=5) as conn:
        conn.send("over tls")
        assert conn.recv(timeout=5) == "over tls"
