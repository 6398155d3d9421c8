"""Answers the proxy writes itself: error pages, the HTTPS redirect, a last word.

Each ends the current exchange the way a backend's answer would (recorded, keep-alive
kept when the request stream is still in sync), or cuts the connection when bytes of
another answer already left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portway.dataplane.recording import record
from portway.protocol import pages
from portway.protocol.redirect import https_location, redirect_response

if TYPE_CHECKING:
    from portway.dataplane.exchange import Exchange
    from portway.dataplane.responding import Responding


def fail_current(conn: Responding, status: int) -> None:
    """End the current exchange with an error page, or cut it if bytes already left."""
    ex = conn.current
    assert ex is not None
    conn._drop_upstream(ex)
    if ex.response_started:
        record(conn, ex)
        conn._close()
        return
    close = (
        status in pages.ALWAYS_CLOSE
        or not ex.body_done
        or not ex.head.keep_alive
        or ex.close_after
        or conn.dp.draining
    )
    if ex.head.method == b"HEAD":
        page = pages.error_head_only(status, close=close)
    else:
        page = pages.error_response(status, close=close)
    _answer(conn, ex, status, page, close)


def redirect(conn: Responding, ex: Exchange, host: str) -> None:
    """301 to the HTTPS listener for every method (never read the body)."""
    dp = conn.dp
    close = not ex.body_done or not ex.head.keep_alive or ex.close_after or dp.draining
    location = https_location(host, ex.head.url, dp.https_port)
    _answer(conn, ex, 301, redirect_response(location, close=close), close)


def answer_and_close(conn: Responding, status: int) -> None:
    """A page outside any exchange (a broken request stream, a slow head), then close."""
    conn.out.append(pages.error_response(status, close=True))
    conn.dp.metrics.observe("", "", status, 0.0)
    conn._close()


def _answer(conn: Responding, ex: Exchange, status: int, answer: bytes, close: bool) -> None:
    conn.out.append(answer)
    ex.status = status
    ex.bytes_out = len(answer)
    ex.response_started = True
    ex.close_after = close
    conn._finish(ex)
