"""close(): stop accepting, finish in-flight requests, close the rest."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from portway.dataplane import DataPlaneSettings
from tests.dataplane.conftest import H_APP, Origin, ProxyRunner, proxy_for


def test_close_lets_inflight_request_finish_with_connection_close(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(DataPlaneSettings(read_timeout=5.0))
    runner.route(proxy_for("app.example.org", origin.backend()))
    port = runner.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    busy = socket.create_connection(("127.0.0.1", port), timeout=5)
    busy.sendall(b"GET /slow HTTP/1.1\r\n" + H_APP + b"\r\n")
    time.sleep(0.3)  # the slow request is in flight
    closer = threading.Thread(target=runner.call, args=(runner.dp.close(5.0),))
    closer.start()
    answer = b""
    while b"late" not in answer:
        part = busy.recv(4096)
        assert part, answer
        answer += part
    assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
    assert busy.recv(10) == b""  # then closed
    assert idle.recv(10) == b""  # the idle keep-alive connection was closed at once
    closer.join(5)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused
    idle.close()
    busy.close()
