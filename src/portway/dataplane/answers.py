"""Answers the proxy writes itself: error pages, the HTTPS redirect, a last word.

Each helper returns the bytes to send and whether the connection closes after them; it
changes nothing. The client connection writes the bytes and ends the exchange the way a
backend's answer would (recorded; kept alive when the request stream is in sync, as
``ConnState.must_close`` says).
"""

from __future__ import annotations

import math

from portway.protocol import pages
from portway.protocol.redirect import https_location, redirect_response


def error_page(status: int, *, head_only: bool, close: bool) -> tuple[bytes, bool]:
    """The page for ``status``; some statuses always close (the stream is not trusted)."""
    close = close or status in pages.ALWAYS_CLOSE
    if head_only:  # a HEAD request: the same head, no body
        return pages.error_head_only(status, close=close), close
    return pages.error_response(status, close=close), close


def rate_limited(wait: float, *, head_only: bool, close: bool) -> tuple[bytes, bool]:
    """429 with Retry-After: the whole seconds until the client's next request passes."""
    page = pages.rate_limited(math.ceil(wait), close=close)
    return (page[: page.index(b"\r\n\r\n") + 4] if head_only else page), close


def redirect(host: str, url: bytes, https_port: int, *, close: bool) -> tuple[bytes, bool]:
    """301 to the HTTPS listener for every method (the body is never read)."""
    return redirect_response(https_location(host, url, https_port), close=close), close


def tool_redirect(location: bytes, *, close: bool) -> tuple[bytes, bool]:
    """307 from the legacy domain to a canonical tool's own hostname (compat.md §2): the
    client repeats the method and body there (the body is never read here)."""
    head = b"".join(
        (
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: ",
            location,
            b"\r\nContent-Length: 0\r\nCache-Control: no-store\r\n",
            b"Connection: close\r\n\r\n" if close else b"\r\n",
        )
    )
    return head, close


def healthz(*, draining: bool, head_only: bool, close: bool) -> tuple[bytes, bool]:
    """The answer to ``--healthz-path``: 200, or 503 once the node drains, so that a load
    balancer in front stops sending before the listeners close."""
    if draining:
        return error_page(503, head_only=head_only, close=True)
    body = b"" if head_only else _HEALTHY
    head = _HEALTHY_HEAD_CLOSE if close else _HEALTHY_HEAD
    return head + body, close


_HEALTHY = b"ok\n"
_HEALTHY_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Cache-Control: no-store\r\n\r\n"
)
_HEALTHY_HEAD_CLOSE = _HEALTHY_HEAD[:-2] + b"Connection: close\r\n\r\n"


def last_word(status: int) -> bytes:
    """A page outside any exchange (a broken request stream, a slow head, a full
    listener); the connection always closes after it."""
    return pages.error_response(status, close=True)
