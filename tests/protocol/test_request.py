"""RequestHead: framing decisions and re-encoding, from bytes alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.errors import RemoteProtocolError
from portway.protocol import request as req
from portway.protocol.request import RequestHead


def head_of(*headers: tuple[bytes, bytes], version: str = "1.1", url: bytes = b"/") -> RequestHead:
    head = RequestHead(32768)
    head.add_url(url, 8192)
    for name, value in headers:
        head.add_header(name, value)
    head.complete(b"POST", version, True)
    return head


def test_content_length_gives_length_framing() -> None:
    head = head_of((b"Host", b"a.b"), (b"Content-Length", b"12"))
    assert head.framing == req.LENGTH
    assert b"Content-Length: 12\r\n" in head.encode(b"", head.url)


def test_chunked_gives_chunked_framing_case_insensitively() -> None:
    head = head_of((b"Host", b"a.b"), (b"Transfer-Encoding", b" Chunked "))
    assert head.framing == req.CHUNKED
    assert b"Transfer-Encoding: chunked\r\n" in head.encode(b"", head.url)


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        (((b"Content-Length", b"1"), (b"Transfer-Encoding", b"chunked")), "1.1"),
        (((b"Content-Length", b"1"), (b"Content-Length", b"1")), "1.1"),
        (((b"Content-Length", b"-1"),), "1.1"),
        (((b"Transfer-Encoding", b"gzip, chunked"),), "1.1"),
        (((b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")), "1.1"),
        (((b"Transfer-Encoding", b"chunked"),), "1.0"),
        (((b"Content_Length", b"1"),), "1.1"),
        (((b"transfer_encoding", b"chunked"),), "1.1"),
        ((), "2.0"),
        (((b"Host", b"other"),), "1.1"),
    ],
)
def test_ambiguous_request_framing_is_refused_with_400(
    headers: tuple[tuple[bytes, bytes], ...], version: str
) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        head_of((b"Host", b"a.b"), *headers, version=version)
    assert info.value.status == 400


def test_missing_host_is_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        head_of()


def test_long_url_is_414_and_big_headers_431() -> None:
    head = RequestHead(100)
    with pytest.raises(RemoteProtocolError) as info:
        head.add_url(b"/" + b"a" * 20, 10)
    assert info.value.status == 414
    with pytest.raises(RemoteProtocolError) as info:
        head.add_header(b"X-Big", b"v" * 200)
    assert info.value.status == 431


def test_hop_by_hop_and_connection_named_headers_are_not_encoded() -> None:
    head = head_of(
        (b"Host", b"a.b"),
        (b"Connection", b"keep-alive, X-Private, Host"),
        (b"X-Private", b"1"),
        (b"Keep-Alive", b"timeout=1"),
        (b"Proxy", b"http://evil"),
        (b"Upgrade", b"h2c"),
        (b"X-Kept", b"2"),
    )
    encoded = head.encode(b"X-Forwarded-For: 1.2.3.4\r\n", head.url)
    assert encoded.startswith(b"POST / HTTP/1.1\r\nHost: a.b\r\n")
    assert b"X-Kept: 2\r\n" in encoded and b"X-Forwarded-For: 1.2.3.4\r\n" in encoded
    for gone in (b"Connection", b"X-Private", b"Keep-Alive", b"Proxy:", b"Upgrade"):
        assert gone not in encoded
    assert head.upgrade == b"h2c"  # remembered for the later tunnel work


def test_expect_from_http10_client_is_dropped() -> None:
    head = head_of((b"Host", b"a.b"), (b"Expect", b"100-continue"), version="1.0")
    assert b"Expect" not in head.encode(b"", head.url)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (b"/a/b?x=1", "/a/b"),
        (b"/a#frag", "/a"),
        (b"/plain", "/plain"),
        (b"http://h.example/x/y?z", "/x/y"),
        (b"http://h.example", "/"),
        (b"*", "/"),
    ],
)
def test_path_for_routing_drops_query_and_authority(url: bytes, path: str) -> None:
    host = b"h.example" if b"://" in url else b"a.b"  # Host must match the target's
    assert head_of((b"Host", host), url=url).path == path


@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b))
def test_any_content_length_is_either_a_length_or_refused(value: bytes) -> None:
    try:
        head = head_of((b"Host", b"a.b"), (b"Content-Length", value))
    except RemoteProtocolError as exc:
        assert exc.status == 400
        assert not (value.isdigit() and len(value) <= 18)
    else:
        assert value.isdigit() and head.framing == req.LENGTH


@given(
    st.lists(
        st.sampled_from([b"chunked", b"gzip", b"Chunked", b"identity", b""]), min_size=1, max_size=3
    )
)
def test_only_a_single_chunked_coding_is_accepted(codings: list[bytes]) -> None:
    value = b", ".join(codings)
    try:
        head = head_of((b"Host", b"a.b"), (b"Transfer-Encoding", value))
    except RemoteProtocolError:
        assert value.strip().lower() != b"chunked"
    else:
        assert value.strip().lower() == b"chunked" and head.framing == req.CHUNKED
