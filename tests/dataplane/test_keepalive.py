"""One keep-alive rule for every answer, the backend's and the proxy's own.

Once the request stream is broken (a malformed request, or an Upgrade that stops the
parser) or the client half-closed, the answer being sent says ``Connection: close`` and
the connection closes after it, whoever wrote the answer. Before the rule lived in one
place, the proxy's own pages (404, 301, ...) kept the connection open in that case.
"""

from __future__ import annotations

import dataclasses
import socket
import time

from portway.model import TlsSettings
from tests.dataplane.conftest import H_APP, Origin, ProxyRunner, proxy_for, raw, status_of

BROKEN = b"POST / HTTP/1.1\r\n" + H_APP + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
H2C = (
    b"GET /up HTTP/1.1\r\n" + H_APP + b"Connection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)


def responses(data: bytes) -> list[bytes]:
    """The status lines and heads of the responses in ``data`` (bodies skipped)."""
    heads = []
    for part in data.split(b"HTTP/1.1 ")[1:]:
        heads.append(b"HTTP/1.1 " + part.split(b"\r\n\r\n", 1)[0])
    return heads


def test_proxy_404_before_a_malformed_request_says_close(
    proxy: ProxyRunner, origin: Origin
) -> None:
    unknown = b"GET / HTTP/1.1\r\nHost: nobody.example.org\r\n\r\n"
    data, closed = raw(proxy.port, unknown + BROKEN)
    heads = responses(data)
    assert [status_of(h) for h in heads] == [404], heads
    assert b"connection: close" in heads[0].lower() and closed
    assert origin.seen == []


def test_proxy_redirect_before_a_malformed_request_says_close(
    proxy: ProxyRunner, origin: Origin
) -> None:
    redirecting = dataclasses.replace(
        proxy_for("app.example.org", origin.backend()), tls=TlsSettings(redirect_http=True)
    )
    proxy.route(redirecting)
    data, closed = raw(proxy.port, b"GET /p HTTP/1.1\r\n" + H_APP + b"\r\n" + BROKEN)
    heads = responses(data)
    assert [status_of(h) for h in heads] == [301], heads
    assert b"connection: close" in heads[0].lower() and closed


def test_proxy_404_before_an_upgrade_request_says_close(proxy: ProxyRunner, origin: Origin) -> None:
    # llhttp stops at the h2c Upgrade: nothing after it can be read, so the answer to
    # the request before it is the last one.
    unknown = b"GET / HTTP/1.1\r\nHost: nobody.example.org\r\n\r\n"
    data, closed = raw(proxy.port, unknown + H2C)
    heads = responses(data)
    assert [status_of(h) for h in heads] == [404], heads
    assert b"connection: close" in heads[0].lower() and closed
    assert origin.seen == []


def test_backend_answer_before_an_upgrade_request_says_close(
    proxy: ProxyRunner, origin: Origin
) -> None:
    data, closed = raw(proxy.port, b"GET /a HTTP/1.1\r\n" + H_APP + b"\r\n" + H2C)
    heads = responses(data)
    assert [status_of(h) for h in heads] == [200], heads
    assert b"connection: close" in heads[0].lower() and closed
    assert [s.path for s in origin.seen] == ["/a"]


def test_upgrade_request_alone_is_served_as_plain_http_then_closed(
    proxy: ProxyRunner, origin: Origin
) -> None:
    data, closed = raw(proxy.port, H2C)
    heads = responses(data)
    assert [status_of(h) for h in heads] == [200], heads
    assert b"connection: close" in heads[0].lower() and closed
    assert [s.path for s in origin.seen] == ["/up"]
    assert origin.seen[0].header("Upgrade") is None


def test_half_closed_client_gets_its_answer_with_close(proxy: ProxyRunner, origin: Origin) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as sock:
        sock.sendall(b"GET /pause HTTP/1.1\r\n" + H_APP + b"\r\n")
        time.sleep(0.1)  # the request is with the backend (it answers after 0.3 s)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while part := sock.recv(65536):
            data += part
    heads = responses(data)
    assert [status_of(h) for h in heads] == [200], heads
    assert b"connection: close" in heads[0].lower()
    assert data.endswith(b"paused")
