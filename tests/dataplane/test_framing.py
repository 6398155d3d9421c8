"""Bodies and framing through the proxy: HEAD/204/304, chunked, close-delimited, 1xx."""

from __future__ import annotations

import socket

import httpx

from tests.dataplane.conftest import H_APP, Origin, ProxyRunner, raw


def test_head_response_has_length_but_no_body_and_connection_is_reused(
    proxy: ProxyRunner, origin: Origin
) -> None:
    reqs = (
        b"HEAD / HTTP/1.1\r\n"
        + H_APP
        + b"\r\n"
        + b"GET /after HTTP/1.1\r\n"
        + H_APP
        + b"Connection: close\r\n\r\n"
    )
    data, closed = raw(proxy.port, reqs)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 7" in head  # len("one / 0")
    assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"one /after 0")
    assert closed
    assert len(origin.connections) == 1  # the upstream connection survived the HEAD


def test_204_and_304_have_no_body(proxy: ProxyRunner) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{proxy.port}", headers={"Host": "app.example.org"}
    ) as c:
        assert c.get("/204").status_code == 204
        response = c.get("/304")
        assert response.status_code == 304 and response.content == b""
        assert response.headers["etag"] == '"x"'
        assert c.get("/").status_code == 200  # same connection still in sync


def test_chunked_response_is_rechunked_for_http11_clients(proxy: ProxyRunner) -> None:
    data, _ = raw(proxy.port, b"GET /chunked HTTP/1.1\r\n" + H_APP + b"Connection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\n\r\n")
    assert (
        httpx.get(
            f"http://127.0.0.1:{proxy.port}/chunked", headers={"Host": "app.example.org"}
        ).text
        == "hello chunked world"
    )


def test_chunked_response_to_http10_client_is_close_delimited(proxy: ProxyRunner) -> None:
    data, closed = raw(proxy.port, b"GET /chunked HTTP/1.0\r\n" + H_APP + b"\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"hello chunked world" and closed


def test_response_without_length_is_chunked_for_http11_and_keeps_client_alive(
    proxy: ProxyRunner,
) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{proxy.port}", headers={"Host": "app.example.org"}
    ) as c:
        response = c.get("/nolength")
        assert response.text == "until close"
        assert response.headers["transfer-encoding"] == "chunked"
        assert c.get("/").status_code == 200


def test_chunked_request_body_is_streamed_to_backend(proxy: ProxyRunner, origin: Origin) -> None:
    def parts():  # type: ignore[no-untyped-def]
        yield b"a" * 1000
        yield b"b" * 2000

    response = httpx.post(
        f"http://127.0.0.1:{proxy.port}/up", headers={"Host": "app.example.org"}, content=parts()
    )
    assert response.status_code == 200
    assert origin.seen[-1].body_len == 3000
    assert origin.seen[-1].header("Transfer-Encoding") == "chunked"


def test_content_length_request_body_is_forwarded(proxy: ProxyRunner, origin: Origin) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{proxy.port}/up",
        headers={"Host": "app.example.org"},
        content=b"z" * 12345,
    )
    assert response.text == "one /up 12345"
    assert origin.seen[-1].header("Content-Length") == "12345"


def test_expect_100_continue_is_forwarded_and_answered(proxy: ProxyRunner, origin: Origin) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\n" + H_APP + b"Content-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(b"data")
        final = b""
        while b"one /e 4" not in final:
            final += sock.recv(4096)
    assert b"HTTP/1.1 200" in final
    assert origin.seen[-1].body_len == 4
