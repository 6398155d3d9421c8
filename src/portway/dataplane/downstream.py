"""The exchange side of a client connection: route, pick, connect, retry, relay.

:class:`Downstream` is the base of :class:`~portway.dataplane.client.ClientConnection`;
it holds everything that happens after a request head is parsed, while ``client`` holds
the parsing and the asyncio callbacks. What the upstream connection calls back into is
in the base class, ``responding``; the proxy's own answers are in ``answers``, the
end-of-exchange bookkeeping in ``recording`` and the WebSocket hand-over in
``switching``. States: IDLE, HEAD, BUSY, TUNNEL (see ``client``).

Retries: a request whose backend could not be connected to, or closed before one byte
of an answer, goes once to another backend, provided no byte of its body has reached a
socket yet (bodies are streamed, never kept, so that is also what makes a resend
possible). A pooled connection that turns out dead is first replaced by a fresh
connection to the same backend, which does not count against the backend's health.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

from portway.dataplane.answers import fail_current, redirect
from portway.dataplane.exchange import Exchange
from portway.dataplane.picking import pick
from portway.dataplane.plans import NO_LIMIT, Plan
from portway.dataplane.pool import UpstreamPool
from portway.dataplane.recording import unbind
from portway.dataplane.responding import BUSY, Responding
from portway.dataplane.upstream import UpstreamConnection, open_upstream
from portway.health.passive import Outcome
from portway.model import Backend
from portway.protocol import request as req
from portway.protocol import websocket as ws

if TYPE_CHECKING:
    pass


class Downstream(Responding):
    __slots__ = ()

    # -- starting an exchange ------------------------------------------------------------

    def _start(self, ex: Exchange) -> None:
        head = ex.head
        self.state = BUSY
        # Keep-alive clients repeat Host and URL: the last lookup holds while the same
        # snapshot object is in force (every swap is a new object, so this is exact).
        last = self._last_route
        if last is not None and last[0] is self.dp.snapshot and last[1] == head.url:
            plan = last[3] if last[2] == head.host else self._route(ex)
        else:
            plan = self._route(ex)
        if plan is None:
            return  # answered already (400, 421, 404, 301)
        ex.plan = plan
        if plan.max_body != NO_LIMIT and _too_large(ex, plan.max_body):
            fail_current(self, 413)  # before reading the body: we never ask for it
            return
        if plan.plain:  # no persistence or hash key: no request header to look at
            backend = plan.balancer.pick(plan.live(), self.peer)
        else:
            backend = pick(plan, head, self.peer)
        if backend is None:
            fail_current(self, 503)
            return
        self.idle = plan.idle
        if plan.total is not None:
            self.hard_deadline = self.dp.now + plan.total
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

    def _route(self, ex: Exchange) -> Plan | None:
        """Host and path → plan, or None after answering (and then nothing is cached)."""
        dp = self.dp
        head = ex.head
        host = dp.host_key(head.host)
        if host is None:
            fail_current(self, 400)
            return None
        tls = self.tls
        if tls is not None and not tls.allows(host):
            fail_current(self, 421)  # another certificate's name on this TLS connection
            return None
        snapshot = dp.snapshot
        route = snapshot.routes.match(host, head.path)
        if route is None:
            fail_current(self, 404)
            return None
        if tls is None and route.proxy.tls.redirect_http:
            redirect(self, ex, host)
            return None
        plan = dp.plans.get(route.proxy)
        self._last_route = (snapshot, head.url, head.host, plan)
        return plan

    def _bind(self, ex: Exchange, backend: Backend) -> None:
        plan = ex.plan
        assert plan is not None
        ex.backend = backend
        if plan.counts_load:  # only least_conn and random read the in-flight counts
            inflight = self.dp.plans.inflight
            inflight[backend.id] = inflight.get(backend.id, 0) + 1
            ex.counted = True
        bucket = ex.bucket = plan.buckets[backend.id]
        idle = bucket.idle  # UpstreamPool.acquire(), inlined for the usual live connection
        conn = idle.pop() if idle else None
        if len(idle) < bucket.low:  # the pool's trim must see this pop (see pool)
            bucket.low = len(idle)
        if conn is not None and not conn.usable:
            conn = UpstreamPool.acquire(bucket)
        if conn is not None:
            self._attach(ex, conn, True)
        else:
            self._connect(ex)

    def _connect(self, ex: Exchange) -> None:
        bucket, plan = ex.bucket, ex.plan
        assert bucket is not None and plan is not None
        self.deadline = self.dp.now + plan.connect
        loop = asyncio.get_running_loop()
        factory = partial(UpstreamConnection, self.dp.pool, bucket)
        # A task only when the pool is empty: at steady state requests reuse connections.
        task = loop.create_task(open_upstream(loop, factory, bucket, self.dp.backend_policy))
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
                self._backend_failed(ex, 502, Outcome.CONNECT_FAILED)
            return
        conn = task.result()[1]
        if ex is not self.current or self.closing:
            conn.release()  # the client went away meanwhile; the connection is still good
            return
        self._attach(ex, conn, False)
        self._update_reading()
        self.flush()

    def _attach(self, ex: Exchange, conn: UpstreamConnection, reused: bool) -> None:
        plan = ex.plan
        assert plan is not None
        ex.upstream = conn
        conn.reused = reused
        self.deadline = self.dp.now + (plan.first_byte if ex.body_done else plan.idle)
        pending = ex.pending
        if pending:  # body bytes read before a connection was bound: one send with the head
            ex.pending = []
            ex.body_sent = True
            pending.insert(0, ex.encoded)
            conn.start(self, b"".join(pending), ex.head.method == b"HEAD")
        else:
            conn.start(self, ex.encoded, ex.head.method == b"HEAD")

    def _send_body(self, ex: Exchange, pieces: tuple[bytes, ...]) -> None:
        up = ex.upstream
        if up is not None and up.transport is not None:
            ex.body_sent = True
            up.transport.writelines(pieces)
        else:
            ex.pending.extend(pieces)

    def _backend_failed(
        self, ex: Exchange, status: int, outcome: Outcome = Outcome.NO_ANSWER
    ) -> None:
        """Connecting failed or the backend hung up unanswered: retry elsewhere once."""
        plan, backend = ex.plan, ex.backend
        assert plan is not None and backend is not None
        self.dp.plans.report(ex, outcome, self.dp.now)
        if not ex.retried and not ex.body_sent and not ex.response_started:
            other = pick(plan, ex.head, self.peer, exclude=backend)
            if other is not None:
                ex.retried = True
                unbind(self.dp, ex)
                self._bind(ex, other)
                self._update_reading()
                self.flush()
                return
        fail_current(self, status)
        self.flush()


def _too_large(ex: Exchange, limit: int) -> bool:
    head = ex.head
    if head.framing == req.LENGTH:
        return int(head.content_length) > limit
    return ex.received > limit
