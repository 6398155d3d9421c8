"""The small HTML pages the proxy answers itself, encoded once at import time.

Each status has two complete responses: one that keeps the client connection open and one
with ``Connection: close``. Both are plain ``bytes`` so an error costs one ``write``.
"""

from __future__ import annotations

from typing import Final

_TEXT: Final[dict[int, tuple[str, str]]] = {
    400: ("Bad Request", "The request could not be understood."),
    403: ("Forbidden", "This request is not allowed here."),
    404: ("Not Found", "There is no such proxy on this address (noproxy)."),
    405: ("Method Not Allowed", "This method cannot be proxied."),
    408: ("Request Timeout", "The request head took too long to arrive."),
    413: ("Content Too Large", "The request body is too large."),
    414: ("URI Too Long", "The request line is too long."),
    421: ("Misdirected Request", "This host is not served on this connection."),
    429: ("Too Many Requests", "Too many requests from your address: slow down and retry later."),
    431: ("Request Header Fields Too Large", "The request headers are too large."),
    502: ("Bad Gateway", "The backend could not be reached or answered badly."),
    503: ("Service Unavailable", "No backend is available for this proxy."),
    504: ("Gateway Timeout", "The backend did not answer in time."),
}
# Statuses where the client should come back later rather than give up.
_RETRY_AFTER: Final = {503: b"Retry-After: 5\r\n", 429: b"Retry-After: 5\r\n"}
# Statuses where the connection is always closed: the stream can no longer be trusted.
ALWAYS_CLOSE: Final = frozenset({400, 408, 413, 414, 431})


def _render(status: int, close: bool) -> bytes:
    title, message = _TEXT[status]
    body = (
        f"<!DOCTYPE html>\n<html><head><title>{status} {title}</title></head>"
        f"<body><h1>{status} {title}</h1><p>{message}</p><hr><p>portway</p></body></html>\n"
    ).encode("ascii")
    head = (
        f"HTTP/1.1 {status} {title}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
    ).encode("ascii")
    head += _RETRY_AFTER.get(status, b"")
    head += b"Connection: close\r\n\r\n" if close else b"\r\n"
    return head + body


_PAGES: Final[dict[tuple[int, bool], bytes]] = {
    (status, close): _render(status, close) for status in _TEXT for close in (False, True)
}
STATUSES: Final = frozenset(_TEXT)


def error_response(status: int, *, close: bool) -> bytes:
    """The complete response for ``status`` (unknown statuses fall back to 502)."""
    if status not in _TEXT:
        status = 502
    return _PAGES[(status, close or status in ALWAYS_CLOSE)]


def rate_limited(retry_after: int, *, close: bool) -> bytes:
    """The 429 page with ``Retry-After: retry_after`` (seconds, at least 1)."""
    page = error_response(429, close=close)
    return page.replace(_RETRY_AFTER[429], b"Retry-After: %d\r\n" % max(1, retry_after), 1)


def error_head_only(status: int, *, close: bool) -> bytes:
    """The same response without its body, for a HEAD request."""
    page = error_response(status, close=close)
    return page[: page.index(b"\r\n\r\n") + 4]
