"""The exchange side of a client connection: route, pick, connect, retry, answer.

:class:`Downstream` is the base of :class:`~portway.dataplane.client.ClientConnection`;
it holds everything that happens after a request head is parsed, while ``client`` holds
the parsing and the asyncio callbacks. The upstream connection calls back into the
``response_*`` / ``upstream_failed`` / ``switching`` / ``splice`` methods.

Retries: a request whose backend could not be connected to, or closed before one byte
of an answer, goes once to another backend, provided no byte of its body has reached a
socket yet (bodies are streamed, never kept, so that is also what makes a resend
possible). A pooled connection that turns out dead is first replaced by a fresh
connection to the same backend, which does not count against the backend's health.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from time import monotonic
from typing import TYPE_CHECKING, Final

from portway.dataplane.exchange import Exchange
from portway.dataplane.picking import pick, sticky_lines
from portway.dataplane.plans import NO_LIMIT
from portway.dataplane.pool import UpstreamPool
from portway.dataplane.tls import Handshake
from portway.dataplane.tunnel import Tunnel
from portway.dataplane.upstream import UpstreamConnection
from portway.model import Backend
from portway.protocol import pages
from portway.protocol import request as req
from portway.protocol import websocket as ws
from portway.protocol.forwarded import ForwardedContext
from portway.protocol.redirect import HSTS_LINE, has_hsts, https_location, redirect_response
from portway.protocol.response import ResponseHead

if TYPE_CHECKING:
    from portway.dataplane.server import DataPlane

IDLE: Final = 0
HEAD: Final = 1
BUSY: Final = 2
TUNNEL: Final = 3
NEVER: Final = float("inf")


class Downstream(asyncio.Protocol):
    __slots__ = (
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

    # Implemented by ClientConnection.
    def _feed(self, data: bytes) -> None:
        raise NotImplementedError

    def _pump(self) -> None:
        raise NotImplementedError

    def _update_reading(self) -> None:
        raise NotImplementedError

    # -- starting an exchange ------------------------------------------------------------

    def _start(self, ex: Exchange) -> None:
        dp = self.dp
        head = ex.head
        self.state = BUSY
        host = dp.host_key(head.host)
        if host is None:
            self._fail_current(400)
            return
        tls = self.tls
        if tls is not None and not tls.allows(host):
            self._fail_current(421)  # another certificate's name on this TLS connection
            return
        route = dp.snapshot.routes.match(host, head.path)
        if route is None:
            self._fail_current(404)
            return
        if tls is None and route.proxy.tls.redirect_http:
            self._redirect(ex, host)
            return
        plan = ex.plan = dp.plans.get(route.proxy)
        if plan.max_body != NO_LIMIT and _too_large(ex, plan.max_body):
            self._fail_current(413)  # before reading the body: we never ask for it
            return
        backend = pick(plan, head, self.peer)
        if backend is None:
            self._fail_current(503)
            return
        self.idle = plan.idle
        if plan.total is not None:
            self.hard_deadline = dp.now + plan.total
        fwd = self.fwd
        assert fwd is not None
        if fwd.trusted:
            lines = fwd.lines(
                head.host,
                xff=head.xff,
                xfproto=head.xfproto,
                xfhost=head.xfhost,
                xfport=head.xfport,
                forwarded=head.forwarded,
            )
        else:  # the common case, without a keyword-argument call
            lines = fwd.untrusted_lines(head.host)
        ex.encoded = head.encode(lines + ws.UPGRADE_LINES if ex.ws_key else lines)
        self._bind(ex, backend)

    def _bind(self, ex: Exchange, backend: Backend) -> None:
        plan = ex.plan
        assert plan is not None
        ex.backend = backend
        if plan.counts_load:  # only least_conn and random read the in-flight counts
            inflight = self.dp.plans.inflight
            inflight[backend.id] = inflight.get(backend.id, 0) + 1
            ex.counted = True
        ex.bucket = plan.buckets[backend.id]
        conn = UpstreamPool.acquire(ex.bucket)
        if conn is not None:
            self._attach(ex, conn, reused=True)
        else:
            self._connect(ex)

    def _unbind(self, ex: Exchange) -> None:
        if ex.counted:
            ex.counted = False
            backend = ex.backend
            assert backend is not None
            inflight = self.dp.plans.inflight
            left = inflight.get(backend.id, 1) - 1
            if left > 0:
                inflight[backend.id] = left
            else:
                inflight.pop(backend.id, None)

    def _connect(self, ex: Exchange) -> None:
        bucket, plan = ex.bucket, ex.plan
        assert bucket is not None and plan is not None
        self.deadline = self.dp.now + plan.connect
        loop = asyncio.get_running_loop()
        factory = partial(UpstreamConnection, self.dp.pool, bucket)
        # A task only when the pool is empty: at steady state requests reuse connections.
        task = loop.create_task(loop.create_connection(factory, bucket.host, bucket.port))
        ex.connect_task = task
        task.add_done_callback(partial(self._connected, ex))

    def _connected(
        self, ex: Exchange, task: asyncio.Future[tuple[asyncio.BaseTransport, UpstreamConnection]]
    ) -> None:
        ex.connect_task = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            if ex is self.current:
                self._backend_failed(ex, 502)
            return
        conn = task.result()[1]
        if ex is not self.current or self.closing:
            conn.release()  # the client went away meanwhile; the connection is still good
            return
        self._attach(ex, conn, reused=False)
        self._update_reading()
        self.flush()

    def _attach(self, ex: Exchange, conn: UpstreamConnection, *, reused: bool) -> None:
        plan = ex.plan
        assert plan is not None
        ex.upstream = conn
        conn.reused = reused
        self.deadline = self.dp.now + (plan.first_byte if ex.body_done else plan.idle)
        pending, ex.pending = ex.pending, []
        if pending:
            ex.body_sent = True
        pending.insert(0, ex.encoded)
        conn.start(self, pending, head_request=ex.head.method == b"HEAD")

    def _backend_failed(self, ex: Exchange, status: int) -> None:
        """Connecting failed or the backend hung up unanswered: retry elsewhere once."""
        plan, backend = ex.plan, ex.backend
        assert plan is not None and backend is not None
        self.dp.plans.failure((plan.proxy.id, backend.id), self.dp.now)
        if not ex.retried and not ex.body_sent and not ex.response_started:
            other = pick(plan, ex.head, self.peer, exclude=backend)
            if other is not None:
                ex.retried = True
                self._unbind(ex)
                self._bind(ex, other)
                self._update_reading()
                self.flush()
                return
        self._fail_current(status)
        self.flush()

    # -- response side (called by UpstreamConnection) ----------------------------

    def response_interim(self, head: bytes) -> None:
        ex = self.current
        if ex is not None and not ex.head.http10:  # HTTP/1.0 clients cannot take a 1xx
            self.out.append(head)

    def response_head(self, head: ResponseHead) -> None:
        ex = self.current
        assert ex is not None
        dp = self.dp
        # A response before the whole request body means the stream cannot be resynced.
        close = (
            not ex.head.keep_alive
            or ex.close_after
            or not ex.body_done
            or self._parser_dead()
            or dp.draining
        )
        ex.status = status = head.status
        plan, backend = ex.plan, ex.backend
        assert plan is not None and backend is not None
        if status >= 500:
            dp.plans.failure((plan.proxy.id, backend.id), dp.now)
        elif dp.plans.outliers.watching:
            dp.plans.outliers.success((plan.proxy.id, backend.id))
        extra = b""
        fwd = self.fwd
        assert fwd is not None
        if plan.sticky is not None:
            secure = fwd.scheme == b"https"
            extra = sticky_lines(plan.sticky, backend, self.peer, ex.head, head, secure=secure)
        if self.tls is not None and plan.proxy.tls.hsts and not has_hsts(head.pieces):
            extra += HSTS_LINE
        encoded = head.encode(
            client_http10=ex.head.http10,
            close=close,
            request_host=ex.head.host,
            client_scheme=fwd.scheme,
            extra=extra,
        )
        self.out.append(encoded)
        ex.bytes_out = len(encoded)
        if dp.access_log is not None:
            ex.upstream_at = monotonic()
        ex.response_started = True
        ex.close_after = head.close

    def response_done(self, conn: UpstreamConnection, *, reusable: bool) -> None:
        ex = self.current
        if ex is None or ex.upstream is not conn:
            conn.close()
            return
        ex.upstream = None
        ex.bytes_out += conn.body_bytes
        if reusable and ex.body_done:
            conn.release()
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
        self._fail_current(status)
        self.flush()

    def set_upstream_paused(self, paused: bool) -> None:
        self._upstream_paused = paused
        self._update_reading()

    # -- WebSocket ------------------------------------------------------------

    def switching(self, head: ResponseHead) -> bool:
        """A backend's 101: True (and the 101 queued for the client) when it completes
        the client's WebSocket handshake; False makes it a 502."""
        ex = self.current
        if ex is None or ex.ws_key is None:
            return False
        accept = head.header_values(b"sec-websocket-accept")
        ok = ws.response_accepts(
            ex.ws_key, upgrade=head.upgrade, accept=accept[0] if len(accept) == 1 else None
        )
        if not ok:
            return False
        head.complete(101, head_request=False)
        encoded = head.encode(client_http10=False, close=False, extra=ws.UPGRADE_LINES)
        self.out.append(encoded)
        ex.status = 101
        ex.response_started = True
        ex.bytes_out = len(encoded)
        return True

    def splice(self, conn: UpstreamConnection, rest: bytes) -> None:
        """Turn this connection and ``conn`` into a raw tunnel (after :meth:`switching`)."""
        ex = self.current
        assert ex is not None and ex.plan is not None and ex.backend is not None
        assert self.transport is not None and conn.transport is not None
        conn.client = None
        conn.usable = False  # never back to the pool: it speaks WebSocket now
        ex.upstream = None
        self.flush()
        dp = self.dp
        if dp.plans.outliers.watching:
            dp.plans.outliers.success((ex.plan.proxy.id, ex.backend.id))
        self.state = TUNNEL
        self.closing = True  # the HTTP side of this connection is over
        self.hard_deadline = NEVER
        self.deadline = dp.now + ex.plan.websocket_idle
        self.tunnel = Tunnel(self, self.transport, conn.transport, ex.plan.websocket_idle)
        stash, self._stash = self._stash, b""
        self.tunnel.open(rest, stash)

    def tunnel_closed(self, tunnel: Tunnel) -> None:
        self._forget()
        ex, self.current = self.current, None
        if ex is not None:
            ex.received += tunnel.bytes_up
            ex.bytes_out += tunnel.bytes_down
            self._record(ex)

    # -- ends of exchanges ------------------------------------------------------------

    def _parser_dead(self) -> bool:
        raise NotImplementedError

    def _forget(self) -> None:
        raise NotImplementedError

    def _finish(self, ex: Exchange) -> None:
        raise NotImplementedError

    def _record(self, ex: Exchange) -> None:
        """Once per exchange: in-flight count, metrics, access log."""
        if ex.recorded:
            return
        ex.recorded = True
        self._unbind(ex)
        dp = self.dp
        plan = ex.plan
        project, label = (plan.proxy.project, plan.label) if plan is not None else ("", "")
        seconds = monotonic() - ex.started
        dp.metrics.observe(project, label, ex.status, seconds)
        log = dp.access_log
        if log is not None:
            backend = ex.backend
            log.log(
                project=project,
                proxy=label,
                backend=f"{backend.address}:{backend.port}" if backend is not None else None,
                method=ex.head.method.decode("latin-1"),
                path=ex.head.url.decode("latin-1"),
                status=ex.status,
                bytes_in=ex.received,
                bytes_out=ex.bytes_out,
                duration_ms=round(seconds * 1000, 3),
                upstream_ms=round((ex.upstream_at - ex.started) * 1000, 3)
                if ex.upstream_at
                else None,
                client=self.peer,
            )

    def _fail_current(self, status: int) -> None:
        """End the current exchange with an error page, or cut it if bytes already left."""
        ex = self.current
        assert ex is not None
        self._drop_upstream(ex)
        if ex.response_started:
            self._record(ex)
            self._close()
            return
        close = (
            status in pages.ALWAYS_CLOSE
            or not ex.body_done
            or not ex.head.keep_alive
            or ex.close_after
            or self.dp.draining
        )
        if ex.head.method == b"HEAD":
            page = pages.error_head_only(status, close=close)
        else:
            page = pages.error_response(status, close=close)
        self.out.append(page)
        ex.status = status
        ex.bytes_out = len(page)
        ex.response_started = True
        ex.close_after = close
        self._finish(ex)

    def _redirect(self, ex: Exchange, host: str) -> None:
        """301 to the HTTPS listener for every method (never read the body)."""
        close = not ex.body_done or not ex.head.keep_alive or ex.close_after or self.dp.draining
        location = https_location(host, ex.head.url, self.dp.https_port)
        answer = redirect_response(location, close=close)
        self.out.append(answer)
        ex.status = 301
        ex.bytes_out = len(answer)
        ex.response_started = True
        ex.close_after = close
        self._finish(ex)

    def _answer_and_close(self, status: int) -> None:
        self.out.append(pages.error_response(status, close=True))
        self.dp.metrics.observe("", "", status, 0.0)
        self._close()

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


def _too_large(ex: Exchange, limit: int) -> bool:
    head = ex.head
    if head.framing == req.LENGTH:
        return int(head.content_length) > limit
    return ex.received > limit
