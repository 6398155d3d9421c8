"""Answers the proxy writes itself: error pages, the HTTPS redirect, a last word.

Each helper returns the bytes to send and whether the connection closes after them; it
changes nothing. The client connection writes the bytes and ends the exchange the way a
backend's answer would (recorded; kept alive when the request stream is in sync, as
``ConnState.must_close`` says).
"""

from __future__ import annotations

from portway.protocol import pages
from portway.protocol.redirect import https_location, redirect_response


def error_page(status: int, *, head_only: bool, close: bool) -> tuple[bytes, bool]:
    """The page for ``status``; some statuses always close (the stream is not trusted)."""
    close = close or status in pages.ALWAYS_CLOSE
    if head_only:  # a HEAD request: the same head, no body
        return pages.error_head_only(status, close=close), close
    return pages.error_response(status, close=close), close


def redirect(host: str, url: bytes, https_port: int, *, close: bool) -> tuple[bytes, bool]:
    """301 to the HTTPS listener for every method (the body is never read)."""
    return redirect_response(https_location(host, url, https_port), close=close), close


def last_word(status: int) -> bytes:
    """A page outside any exchange (a broken request stream, a slow head, a full
    listener); the connection always closes after it."""
    return pages.error_response(status, close=True)
