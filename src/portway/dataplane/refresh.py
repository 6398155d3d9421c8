"""A background refresh of a stale entry (stale-while-revalidate, RFC 5861): one request
to the backend that no client waits for, whose answer only goes into the cache.

It is a ``ResponseSink`` of its own, so the upstream connection needs nothing new: body
bytes reach the fill through the connection's tee, and what it puts in ``out`` is thrown
away. A deadline (the proxy's first-byte timeout plus its idle timeout) bounds it, so a
hung backend cannot hold the key's fill, and with it every later miss, for ever.
"""

from __future__ import annotations

import asyncio
import ssl
from time import time
from typing import TYPE_CHECKING, Any

from portway.dataplane import caching
from portway.dataplane.pool import UpstreamPool
from portway.dataplane.upstream import UpstreamConnection, connect

if TYPE_CHECKING:
    from portway.dataplane.caching import Flow
    from portway.dataplane.plans import Plan
    from portway.health.passive import Outcome
    from portway.model import Backend
    from portway.model.backend_policy import BackendPolicy
    from portway.protocol.request import RequestHead
    from portway.protocol.response import ResponseHead


class _Discard(list[bytes]):
    """An output list that keeps nothing (the refresh has no client to write to)."""

    def append(self, _item: bytes) -> None:
        pass

    def extend(self, _items: Any) -> None:
        pass


class Refresh:
    __slots__ = ("_conn", "_deadline", "_done", "bucket", "flow", "out", "request", "wire")

    def __init__(
        self, flow: Flow, request: RequestHead, plan: Plan, backend: Backend, wire: bytes
    ) -> None:
        self.flow = flow
        self.request = request
        self.wire = wire
        self.bucket = plan.buckets[backend.id]
        self.out: list[bytes] = _Discard()
        self._conn: UpstreamConnection | None = None
        self._done = False
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(plan.first_byte + plan.idle, self._give_up)

    def start(
        self,
        pool: UpstreamPool[UpstreamConnection],
        policy: BackendPolicy,
        tls: ssl.SSLContext,
    ) -> None:
        conn = UpstreamPool.acquire(self.bucket)
        if conn is not None:
            self._send(conn)
            return
        task = connect(pool, self.bucket, policy, tls)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Future[tuple[asyncio.BaseTransport, Any]]) -> None:
        if task.cancelled() or task.exception() is not None:
            self._end(None)
            return
        conn = task.result()[1]
        if self._done:
            conn.release()
            return
        self._send(conn)

    def _send(self, conn: UpstreamConnection) -> None:
        self._conn = conn
        conn.start(self, self.wire, False)

    def _give_up(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()
        self._end(None)

    def _end(self, conn: UpstreamConnection | None, reusable: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self._deadline.cancel()
        if conn is not None:
            if reusable:
                conn.release()
            else:
                conn.close()
        caching.finish(self.flow)

    # -- ResponseSink ------------------------------------------------------------

    def backend_active(self) -> None:
        pass

    def response_interim(self, head: bytes) -> None:
        pass

    def response_head(self, head: ResponseHead) -> None:
        flow = self.flow
        now = time()
        if head.status == 304 and flow.entry is not None:
            caching.refreshed(flow, head, now)  # stored in place; the fill stays empty
            return
        caching.on_response(flow, head, self.request, now)
        fill = flow.fill
        if fill is not None and fill.storing and self._conn is not None:
            self._conn.tee = fill.append

    def response_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        self.flow.complete = True
        self._conn = None
        self._end(conn, reusable)

    def upstream_failed(
        self, conn: UpstreamConnection, status: int, outcome: Outcome | None
    ) -> None:
        self._conn = None
        self._end(None)

    def set_upstream_paused(self, paused: bool) -> None:
        pass

    def switching(self, head: ResponseHead) -> bool:
        return False

    def splice(self, conn: UpstreamConnection, rest: bytes) -> None:
        conn.abort()  # never asked for: switching() refuses every 101

    def flush(self) -> None:
        pass
