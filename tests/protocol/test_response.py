"""ResponseHead: framing of backend responses and re-framing for the client."""

from __future__ import annotations

import pytest

from portway.errors import RemoteProtocolError
from portway.protocol import response as resp
from portway.protocol.response import ResponseHead


def head_of(
    *headers: tuple[bytes, bytes], status: int = 200, head_request: bool = False
) -> ResponseHead:
    head = ResponseHead()
    head.reason = b"OK"
    for name, value in headers:
        head.add_header(name, value)
    head.complete(status, head_request=head_request)
    return head


def test_length_response_keeps_its_length_and_client_connection() -> None:
    head = head_of((b"Content-Length", b"5"), (b"Server", b"x"), (b"Connection", b"keep-alive"))
    encoded = head.encode(client_http10=False, close=False)
    assert encoded == b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n\r\n"
    assert head.framing == resp.LENGTH and not head.rechunk


def test_chunked_or_unframed_response_is_rechunked_for_http11() -> None:
    for headers in (((b"Transfer-Encoding", b"chunked"),), ()):
        head = head_of(*headers)
        encoded = head.encode(client_http10=False, close=False)
        assert b"Transfer-Encoding: chunked\r\n" in encoded and head.rechunk and not head.close


def test_chunked_response_to_http10_closes_instead() -> None:
    head = head_of((b"Transfer-Encoding", b"chunked"))
    encoded = head.encode(client_http10=True, close=False)
    assert b"Transfer-Encoding" not in encoded and b"Connection: close\r\n" in encoded
    assert head.close and not head.rechunk


@pytest.mark.parametrize(("status", "head_request"), [(204, False), (304, False), (200, True)])
def test_bodyless_responses(status: int, head_request: bool) -> None:
    head = head_of((b"Content-Length", b"10"), status=status, head_request=head_request)
    assert head.framing == resp.NO_BODY
    encoded = head.encode(client_http10=False, close=False)
    assert (b"Content-Length: 10" in encoded) == (status != 204)


@pytest.mark.parametrize(
    "headers",
    [
        ((b"Content-Length", b"1"), (b"Transfer-Encoding", b"chunked")),
        ((b"Content-Length", b"1"), (b"Content-Length", b"2")),
        ((b"Transfer-Encoding", b"gzip"),),
        ((b"Transfer-Encoding", b"gzip, chunked"),),
        ((b"Content-Length", b"x"),),
    ],
)
def test_ambiguous_response_framing_is_502(headers: tuple[tuple[bytes, bytes], ...]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        head_of(*headers)
    assert info.value.status == 502


def test_response_hop_by_hop_and_named_headers_are_dropped() -> None:
    head = head_of(
        (b"Content-Length", b"0"),
        (b"Connection", b"X-Secret"),
        (b"X-Secret", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Authenticate", b"Basic"),
        (b"X-Ok", b"1"),
    )
    encoded = head.encode(client_http10=True, close=False)
    assert b"X-Secret" not in encoded and b"Keep-Alive:" not in encoded
    assert b"Proxy-Authenticate" not in encoded and b"X-Ok: 1" in encoded
    assert encoded.endswith(b"Connection: keep-alive\r\n\r\n")  # HTTP/1.0 keep-alive client


def test_location_is_rewritten_only_for_a_different_client_scheme() -> None:
    head = head_of((b"Location", b"http://app.example.org/next"), (b"Content-Length", b"0"))
    plain = head.encode(client_http10=False, close=False, request_host=b"app.example.org")
    assert b"Location: http://app.example.org/next" in plain
    tls = head.encode(
        client_http10=False, close=False, request_host=b"app.example.org", client_scheme=b"https"
    )
    assert b"Location: https://app.example.org/next" in tls
