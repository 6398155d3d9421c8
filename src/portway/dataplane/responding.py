"""The answer side of a client connection: relay a backend's response to the client.

:class:`Responding` is the base of a client connection (``Downstream``, then
``ClientConnection``): it holds the connection's state and the methods an
:class:`~portway.dataplane.upstream.UpstreamConnection` calls while it parses a
response: the head (re-framed for the client, with the headers Portway adds), the end of
the body (the connection back to the pool), failures (retry or error page) and the
WebSocket hand-over (see ``switching``). Body bytes go straight into ``out`` from the
upstream parser's callbacks, and ``flush`` writes them once per read.

Health bookkeeping costs nothing for a healthy fleet: the outlier detector is only
called on a 5xx or while it is watching a backend; persistence and HSTS only when the
proxy has them configured.
"""

from __future__ import annotations

import asyncio
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Final

from portway.dataplane import switching as sw
from portway.dataplane.answers import fail_current
from portway.dataplane.exchange import Exchange
from portway.dataplane.picking import sticky_lines
from portway.dataplane.plans import Plan
from portway.dataplane.tls import Handshake
from portway.dataplane.tunnel import Tunnel
from portway.dataplane.upstream import UpstreamConnection
from portway.health.passive import Outcome
from portway.protocol.forwarded import ForwardedContext
from portway.protocol.redirect import HSTS_LINE, has_hsts
from portway.protocol.response import ResponseHead
from portway.router import Snapshot

if TYPE_CHECKING:
    from portway.dataplane.server import DataPlane

# A client connection's states (see client.py; TUNNEL is in switching.py).
IDLE: Final = 0
HEAD: Final = 1
BUSY: Final = 2
NEVER: Final = float("inf")


class Responding(asyncio.Protocol):
    __slots__ = (
        "_last_route",
        "_parser_is_dead",
        "_stash",
        "_upstream_paused",
        "closing",
        "current",
        "deadline",
        "dp",
        "fwd",
        "hard_deadline",
        "idle",
        "out",
        "peer",
        "queue",
        "state",
        "tls",
        "transport",
        "tunnel",
    )

    def __init__(self, dp: DataPlane) -> None:
        self.dp = dp
        self.transport: asyncio.Transport | None = None
        self.current: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.out: list[bytes] = []
        self.state = HEAD
        self.deadline = dp.now + dp.settings.client_header_timeout
        self.hard_deadline = NEVER  # the proxy's total timeout for the current exchange
        self.idle = dp.settings.read_timeout
        self.closing = False
        self.peer = ""
        self.fwd: ForwardedContext | None = None
        self.tunnel: Tunnel | None = None
        self.tls: Handshake | None = None  # set on HTTPS connections by connection_made
        self._stash = b""
        self._upstream_paused = False
        self._parser_is_dead = False  # the request stream cannot be parsed any further
        # (snapshot, url, raw Host, plan) of the last routed request; see _start.
        self._last_route: tuple[Snapshot, bytes, bytes, Plan] | None = None

    # Implemented by Downstream and ClientConnection.
    def _feed(self, data: bytes) -> None:
        raise NotImplementedError

    def _update_reading(self) -> None:
        raise NotImplementedError

    def _forget(self) -> None:
        raise NotImplementedError

    def _finish(self, ex: Exchange) -> None:
        raise NotImplementedError

    def _connect(self, ex: Exchange) -> None:
        raise NotImplementedError

    def _backend_failed(
        self, ex: Exchange, status: int, outcome: Outcome = Outcome.NO_ANSWER
    ) -> None:
        raise NotImplementedError

    # -- response side (called by UpstreamConnection) ----------------------------

    def response_interim(self, head: bytes) -> None:
        ex = self.current
        if ex is not None and not ex.head.http10:  # HTTP/1.0 clients cannot take a 1xx
            self.out.append(head)

    def response_head(self, head: ResponseHead) -> None:
        ex = self.current
        assert ex is not None
        dp = self.dp
        request = ex.head
        # A response before the whole request body means the stream cannot be resynced.
        close = (
            not request.keep_alive
            or ex.close_after
            or not ex.body_done
            or self._parser_is_dead
            or dp.draining
        )
        ex.status = status = head.status
        plan = ex.plan
        assert plan is not None
        if status >= 500 or dp.plans.outliers.watching:
            self._health(ex, status)
        fwd = self.fwd
        assert fwd is not None
        extra = b""
        if plan.sticky is not None:
            extra = self._sticky(ex, head)
        if self.tls is not None and plan.proxy.tls.hsts and not has_hsts(head.pieces):
            extra += HSTS_LINE
        encoded = head.encode(request.http10, close, request.host, fwd.scheme, extra)
        self.out.append(encoded)
        ex.bytes_out = len(encoded)
        if dp.access_log is not None:
            ex.upstream_at = monotonic()
        ex.response_started = True
        ex.close_after = head.close

    def _health(self, ex: Exchange, status: int) -> None:
        """Feed the passive outlier detector (only called when it has something to do)."""
        self.dp.plans.report(ex, Outcome.ANSWERED, self.dp.now, status)

    def _sticky(self, ex: Exchange, head: ResponseHead) -> bytes:
        plan, backend, fwd = ex.plan, ex.backend, self.fwd
        assert plan is not None and plan.sticky is not None
        assert backend is not None and fwd is not None
        secure = fwd.scheme == b"https"
        return sticky_lines(plan.sticky, backend, self.peer, ex.head, head, secure=secure)

    def response_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        ex = self.current
        if ex is None or ex.upstream is not conn:
            conn.close()
            return
        ex.upstream = None
        ex.bytes_out += conn.body_bytes
        if reusable and ex.body_done:  # conn.release(), inlined: once per request
            if conn.pool.release(conn.bucket, conn) is not None:
                conn.close()  # no longer usable
        else:
            conn.close()
        self._finish(ex)

    def upstream_failed(self, conn: UpstreamConnection, status: int) -> None:
        ex = self.current
        if ex is None or ex.upstream is not conn:
            return
        ex.upstream = None
        if not conn.got_bytes and not ex.response_started:
            if conn.reused and not ex.stale_retried and not ex.body_sent:
                # A pooled connection the backend had already closed: a fresh one, once.
                ex.stale_retried = True
                self._connect(ex)
                return
            self._backend_failed(ex, status)
            return
        fail_current(self, status)
        self.flush()

    def set_upstream_paused(self, paused: bool) -> None:
        self._upstream_paused = paused
        self._update_reading()

    # -- WebSocket (see switching) ------------------------------------------------

    def switching(self, head: ResponseHead) -> bool:
        return sw.switching(self, head)

    def splice(self, conn: UpstreamConnection, rest: bytes) -> None:
        sw.splice(self, conn, rest)

    def tunnel_closed(self, tunnel: Tunnel) -> None:
        sw.tunnel_closed(self, tunnel)

    # -- ends of exchanges ------------------------------------------------------------

    # -- output ------------------------------------------------------------

    def _drop_upstream(self, ex: Exchange) -> None:
        if ex.connect_task is not None:
            ex.connect_task.cancel()
            ex.connect_task = None
        up, ex.upstream = ex.upstream, None
        if up is not None:
            up.abort()

    def _close(self) -> None:
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()  # close() sends what is buffered first

    def flush(self) -> None:
        out = self.out
        if out and self.transport is not None:
            # One write per read: head and body of a small response leave in one send().
            # uvloop's write() tries send() at once; writelines() queues a uv_write first,
            # which measured ~2x slower for small responses, so small pieces are joined.
            if len(out) == 1:
                self.transport.write(out[0])
            elif len(out) < 8:
                self.transport.write(b"".join(out))
            else:
                self.transport.writelines(out)
            out.clear()
