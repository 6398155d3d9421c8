"""Issue 7, defect 9: request limits that are exact, and hostnames that are names.

``--max-request-line 8192`` counted only the request target (a request line of 8 205
bytes got through) and the head limit let 32 786 bytes through instead of 32 768. The
request line is now ``method SP request-target SP HTTP-version`` without its CRLF (as
nginx counts it); the head is every byte from the request line's first to the blank
line's last, CRLFs included. Each limit is tested at its exact boundary: the limit is
accepted, one byte more is refused.

IP literals (``127.0.0.1``, ``10.0.0.1``, ``1.2``) were accepted as proxy hostnames; a
URL parser reads a name whose last label is numeric as an IPv4 address (WHATWG URL host
parser, "ends in a number"; RFC 1123 §2.1), so such names are refused with 422.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from portway.dataplane import DataPlaneSettings
from portway.errors import RemoteProtocolError, ValidationError
from portway.model import normalize_hostname
from portway.protocol.request import RequestHead
from tests.api.conftest import Api, assert_error
from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for, status_of

# -- hostnames ---------------------------------------------------------------------------

NOT_HOSTNAMES = [
    "127.0.0.1",
    "10.0.0.1",
    "1.2",
    "0x7f.1",
    "4294967295.0",
    "app.123",
    "*.10.0.0",
    "*.1.2",
    "app.0x1f",
    "app.0X1F",
    "app.0x",
    "127.0.0.1.",
    "::1",
    "[::1]",
    "[2001:db8::1]",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "fe80::1%25eth0",
]


@pytest.mark.parametrize("raw", NOT_HOSTNAMES)
def test_ip_literals_and_numeric_last_labels_are_not_hostnames(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        normalize_hostname(raw)
    assert info.value.field == "hostname"


@pytest.mark.parametrize(
    "raw", ["1.example.org", "10.0.0.example", "0x1f.example.org", "a1.b2", "app.x0", "app.1a"]
)
def test_names_with_numeric_labels_before_the_last_are_still_hostnames(raw: str) -> None:
    assert normalize_hostname(raw) == raw


@pytest.mark.parametrize("raw", ["127.0.0.1", "1.2", "[::1]", "*.10.0.0"])
def test_the_api_refuses_an_ip_literal_hostname_with_422(api: Api, raw: str) -> None:
    body = {"proxy": {"hostname": raw, "backends": [{"address": "127.0.0.1", "port": 8080}]}}
    r = api.client.post("/v1/alpha/proxies", json=body, headers=api.member)
    assert_error(r, 422, "hostname")


def test_an_ip_literal_is_not_a_zone_either(api: Api) -> None:
    r = api.client.post("/v1/zones", json={"zone": {"name": "10.0.0.1"}}, headers=api.admin)
    assert_error(r, 422, "name")
    r = api.client.post("/v1/zones", json={"zone": {"name": "0.10"}}, headers=api.admin)
    assert_error(r, 422, "name")


def test_a_numeric_proxy_reference_is_simply_not_found(api: Api) -> None:
    r = api.client.get("/v1/alpha/proxies/10.0.0.1", headers=api.member)
    assert_error(r, 404)


# -- request line and head limits on the wire --------------------------------------------

LINE = DataPlaneSettings().max_request_line  # 8192, the documented default
HEAD = DataPlaneSettings().max_header_bytes  # 32768
HOST = b"Host: app.example.org\r\n"


def request_line(method: bytes, length: int) -> bytes:
    """A request line of exactly ``length`` bytes (without its CRLF)."""
    fixed = len(method) + len(b" / HTTP/1.1")
    return method + b" /" + b"a" * (length - fixed) + b" HTTP/1.1"


def head_of(length: int) -> bytes:
    """A GET head of exactly ``length`` bytes, CRLFs and the blank line included."""
    start = b"GET /pad HTTP/1.1\r\n" + HOST + b"X-Pad: "
    pad = length - len(start) - len(b"\r\n\r\n")
    head = start + b"v" * pad + b"\r\n\r\n"
    assert len(head) == length
    return head


def test_request_head_counts_the_whole_line_and_the_whole_head() -> None:
    # Sans-IO: "DELETE /aaa HTTP/1.1" is 20 bytes; its head with "Host: a.b" is 20 + 2 +
    # 11 + 2 = 35.
    RequestHead(35, b"DELETE").add_url(b"/aaa", 20)
    with pytest.raises(RemoteProtocolError) as info:
        RequestHead(35, b"DELETE").add_url(b"/aaaa", 20)
    assert info.value.status == 414
    head = RequestHead(35, b"DELETE")
    head.add_url(b"/aaa", 20)
    head.add_header(b"Host", b"a.b")
    head = RequestHead(35, b"DELETE")
    head.add_url(b"/aaa", 20)
    with pytest.raises(RemoteProtocolError) as info:
        head.add_header(b"Host", b"a.bc")
    assert info.value.status == 431


def send(port: int, parts: list[bytes], timeout: float = 3.0) -> tuple[bytes, bool]:
    """Send ``parts`` as separate TCP segments (a pause between them, so the data plane
    reads them one by one); return what came back and whether the proxy closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, part in enumerate(parts):
            if i:
                time.sleep(0.03)
            sock.sendall(part)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, False
            if not chunk:
                return received, True
            received += chunk
            if _complete(received):
                sock.settimeout(0.5)  # answered: closed after it, or kept alive?


def _complete(response: bytes) -> bool:
    head, found, body = response.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def split(data: bytes, pieces: int) -> list[bytes]:
    size = -(-len(data) // pieces)
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("pieces", [1, 3], ids=["one-read", "three-reads"])
@pytest.mark.parametrize("method", [b"GET", b"DELETE"])
def test_a_request_line_of_exactly_the_limit_passes_and_one_byte_more_is_414(
    proxy: ProxyRunner, origin: Origin, method: bytes, pieces: int
) -> None:
    at_limit = request_line(method, LINE) + b"\r\n" + HOST + b"\r\n"
    data, _ = send(proxy.port, split(at_limit, pieces))
    assert status_of(data) == 200, data[:200]
    assert len(origin.seen) == 1

    over = request_line(method, LINE + 1) + b"\r\n" + HOST + b"\r\n"
    data, closed = send(proxy.port, split(over, pieces))
    assert status_of(data) == 414 and closed
    assert len(origin.seen) == 1  # the long one never reached the backend


@pytest.mark.parametrize("pieces", [1, 2, 5], ids=["one-read", "two-reads", "five-reads"])
def test_a_head_of_exactly_the_limit_passes_and_one_byte_more_is_431(
    proxy: ProxyRunner, origin: Origin, pieces: int
) -> None:
    data, _ = send(proxy.port, split(head_of(HEAD), pieces))
    assert status_of(data) == 200, data[:200]
    assert len(origin.seen) == 1
    data, closed = send(proxy.port, split(head_of(HEAD + 1), pieces))
    assert status_of(data) == 431 and closed
    assert len(origin.seen) == 1


def test_the_limits_follow_the_settings_exactly(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(DataPlaneSettings(max_request_line=100, max_header_bytes=300))
    runner.route(proxy_for("app.example.org", origin.backend()))
    line = request_line(b"GET", 100) + b"\r\n" + HOST + b"\r\n"
    assert status_of(send(runner.port, [line])[0]) == 200
    line = request_line(b"GET", 101) + b"\r\n" + HOST + b"\r\n"
    assert status_of(send(runner.port, [line])[0]) == 414
    assert status_of(send(runner.port, [head_of(300)])[0]) == 200
    assert status_of(send(runner.port, [head_of(301)])[0]) == 431


def test_a_second_request_on_the_connection_is_measured_from_its_own_first_byte(
    proxy: ProxyRunner, origin: Origin
) -> None:
    # Two heads at the limit, pipelined, the second over three reads: neither is charged
    # for the other's bytes (the raw count used to include the first head's).
    first, second = head_of(HEAD), head_of(HEAD)
    data, _ = send(proxy.port, [first + second[:100], second[100:16000], second[16000:]])
    assert data.count(b"HTTP/1.1 200 ") == 2, data[:300]
    assert len(origin.seen) == 2


def test_a_head_padded_with_whitespace_across_reads_is_still_bounded(
    proxy: ProxyRunner, origin: Origin
) -> None:
    # Whitespace before a value is dropped by the parser; the raw bytes of a head still
    # unfinished after a read are counted too, so padding cannot carry it past the limit.
    start = b"GET / HTTP/1.1\r\n" + HOST + b"X-Pad:"
    padded = start + b" " * (HEAD + 1 - len(start))
    data, closed = send(proxy.port, [padded, b"v\r\n\r\n"])
    assert status_of(data) == 431 and closed
    assert origin.seen == []
