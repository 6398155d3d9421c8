"""Framing, sent as raw bytes to every data plane: what two parsers could read two ways
is refused with a 400 and a close and never reaches a backend; what RFC 9110/9112 allow
is forwarded."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from portway.model import Backend
from tests.conformance.client import raw, status_of
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import proxy_for
from tests.dataplane.test_rfc9112 import CapturingOrigin

H = b"Host: app.example.org\r\n"
CLOSE = b"Connection: close\r\n\r\n"
CHUNKED = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"

REFUSED = {
    "content_length_list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 4\r\n\r\nabcd",
    "content_length_sign": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc",
    "two_different_content_lengths": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "bad_chunk_size": CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n",
    "chunk_size_0x": CHUNKED + b"0x3\r\nabc\r\n0\r\n\r\n",
    "chunk_size_overflow": CHUNKED + b"fffffffffffffffffffff\r\nabc\r\n",
    "chunk_missing_crlf": CHUNKED + b"3\r\nabcX\r\n0\r\n\r\n",
}


@pytest.fixture
def capturing(plane: Plane) -> Iterator[CapturingOrigin]:
    origin = CapturingOrigin()
    plane.route(
        proxy_for("app.example.org", Backend(id="c", address="127.0.0.1", port=origin.port))
    )
    yield origin
    origin.close()


def refused_and_never_forwarded(plane: Plane, capturing: CapturingOrigin, request: bytes) -> None:
    data, closed = raw(plane.port, request)
    assert 400 <= status_of(data) < 500 and closed, data[:200]
    time.sleep(0.05)
    assert capturing.requests == []


@pytest.mark.feature("framing")
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_ambiguous_framing_gets_400_and_close_and_is_never_forwarded(
    plane: Plane, capturing: CapturingOrigin, case: str
) -> None:
    refused_and_never_forwarded(plane, capturing, REFUSED[case])


# Refused by some planes only: one docs row each.
REFUSED_BY_ROW = [
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        id="cl_and_te",
        marks=pytest.mark.feature("cl_and_te"),
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n continued\r\n\r\n",
        id="obs_fold",
        marks=pytest.mark.feature("obs_fold"),
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        id="two_equal_content_lengths",
        marks=pytest.mark.feature("duplicate_cl"),
    ),
]


@pytest.mark.parametrize("request_bytes", REFUSED_BY_ROW)
def test_framing_some_planes_accept_gets_400_and_close(
    plane: Plane, capturing: CapturingOrigin, request_bytes: bytes
) -> None:
    refused_and_never_forwarded(plane, capturing, request_bytes)


@pytest.mark.feature("valid_framing")
def test_content_length_with_trailing_whitespace_is_forwarded(
    plane: Plane, capturing: CapturingOrigin
) -> None:
    """RFC 9110 §5.5: whitespace around a field value is not part of it."""
    forwarded_with_length_5(plane, capturing, b"5  ")


@pytest.mark.feature("cl_tab")
def test_content_length_with_a_trailing_tab_is_forwarded(
    plane: Plane, capturing: CapturingOrigin
) -> None:
    forwarded_with_length_5(plane, capturing, b"5 \t")


def forwarded_with_length_5(plane: Plane, capturing: CapturingOrigin, value: bytes) -> None:
    request = b"POST /up HTTP/1.1\r\n" + H + b"Content-Length: " + value + b"\r\n" + CLOSE
    data, _ = raw(plane.port, request + b"hello")
    assert status_of(data) == 200
    head, _, body = capturing.requests[-1].partition(b"\r\n\r\n")
    assert b"\r\ncontent-length: 5\r\n" in head.lower() + b"\r\n" and body == b"hello"


@pytest.mark.feature("valid_framing")
def test_chunked_request_with_trailer_fields_is_accepted(
    plane: Plane, capturing: CapturingOrigin
) -> None:
    """RFC 9112 §7.1.2: a chunked body may end with trailer fields."""
    request = (
        b"POST /t HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n"
        + CLOSE
        + b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
    )
    data, _ = raw(plane.port, request)
    assert status_of(data) == 200
    assert b"hello" in capturing.requests[-1].partition(b"\r\n\r\n")[2]
