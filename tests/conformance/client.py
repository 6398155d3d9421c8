"""The client side of the conformance cases: plain http.client requests, raw bytes for
framing, and Portway's error pages to compare with."""

from __future__ import annotations

import collections
import http.client

from portway.protocol.pages import error_response
from tests.dataplane.conftest import raw, status_of

__all__ = ["get", "names", "page_body", "raw", "status_of"]


def get(
    port: int,
    host: str,
    path: str = "/",
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    """One request on a new connection: status, body, and the response for its headers;
    ``source``: the loopback address to send from (a client address of its own)."""
    bound = None if source is None else (source, 0)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=bound)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def names(port: int, host: str, count: int, path: str = "/") -> collections.Counter[bytes]:
    """Which origin answered each of ``count`` requests (the first word of its body)."""
    return collections.Counter(get(port, host, path)[1].split()[0] for _ in range(count))


def page_body(status: int) -> bytes:
    """The body of Portway's own page for ``status``."""
    return error_response(status, close=False).split(b"\r\n\r\n", 1)[1]
