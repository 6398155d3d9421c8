"""One client connection: parse requests, route them, splice responses back.

States: IDLE (keep-alive, waiting for a first byte), HEAD (a request head is arriving;
the slowloris timer runs), BUSY (an exchange is in flight). Requests are answered in
order: bytes that arrive while a complete request waits for its answer are stashed
unparsed and reading pauses until the answer is done, so a pipelining client never makes
the proxy buffer more than one read. Requests parsed from the same read as an earlier
one wait in ``queue``.

Reading is driven by :meth:`_update_reading` from the state alone, so the three reasons
to pause (waiting for a response, no upstream bound yet, upstream write buffer full)
cannot fight each other.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Final, cast

import httptools

from portway.dataplane.exchange import Exchange
from portway.dataplane.pool import UpstreamPool
from portway.dataplane.upstream import UpstreamConnection
from portway.errors import ProtocolError
from portway.protocol import chunked, pages
from portway.protocol import request as req
from portway.protocol.forwarded import ForwardedContext, is_trusted
from portway.protocol.request import RequestHead
from portway.protocol.response import ResponseHead

if TYPE_CHECKING:
    from portway.dataplane.server import DataPlane

_Connected = tuple[asyncio.BaseTransport, UpstreamConnection]
IDLE: Final = 0
HEAD: Final = 1
BUSY: Final = 2


def _status_of(exc: Exception) -> int:
    """Map an httptools error (possibly wrapping ours) to the status to answer."""
    inner = exc.__context__
    if isinstance(inner, ProtocolError):
        return inner.status
    return 400


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "_head_bytes",
        "_parser",
        "_parser_dead",
        "_pumping",
        "_reading",
        "_stash",
        "_upstream_paused",
        "closing",
        "current",
        "deadline",
        "dp",
        "fatal",
        "fwd",
        "head",
        "out",
        "peer",
        "queue",
        "receiving",
        "state",
        "transport",
    )

    def __init__(self, dp: DataPlane) -> None:
        self.dp = dp
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self.head: RequestHead | None = None
        self.receiving: Exchange | None = None
        self.current: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.out: list[bytes] = []
        self.state = HEAD
        self.deadline = dp.now + dp.settings.client_header_timeout
        self.fatal = 0
        self.closing = False
        self.peer = ""
        self.fwd: ForwardedContext | None = None
        self._head_bytes = 0
        self._reading = True
        self._stash = b""
        self._upstream_paused = False
        self._parser_dead = False
        self._pumping = False

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance here.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = peer[0] if peer else "unknown"
        trusted = is_trusted(self.peer, self.dp.networks)
        port = local[1] if local else 0
        self.fwd = ForwardedContext(peer_ip=self.peer, port=port, scheme=b"http", trusted=trusted)
        self.dp.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.dp.connections.discard(self)
        ex, self.current = self.current, None
        if ex is not None:
            self._drop_upstream(ex)
        self.queue.clear()

    def pause_writing(self) -> None:
        # The client reads slower than the backend sends: stop reading the backend.
        ex = self.current
        if ex is not None and ex.upstream is not None and ex.upstream.transport is not None:
            ex.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.deadline = self.dp.now + self.dp.settings.read_timeout
        ex = self.current
        if ex is not None and ex.upstream is not None and ex.upstream.transport is not None:
            ex.upstream.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.current is not None and self.receiving is None:
            # A pipelined request while the previous answer is pending: hold the bytes and
            # stop reading. Pausing only now, not after every request, saves two epoll_ctl
            # calls per request for ordinary (non-pipelining) keep-alive clients.
            self._stash += data
            self._update_reading()
            return
        self._feed(data)

    def eof_received(self) -> bool | None:
        ex = self.current
        if ex is not None and not self.queue:
            ex.close_after = True  # half-closed client: still send its answer, then close
            return True
        return None

    def _feed(self, data: bytes) -> None:
        settings = self.dp.settings
        if self.state == IDLE:
            self.state = HEAD
            self.deadline = self.dp.now + settings.client_header_timeout
        elif self.state == BUSY:
            self.deadline = self.dp.now + settings.read_timeout
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._on_upgrade()
        except httptools.HttpParserError as exc:
            self._parse_failed(_status_of(exc))
        else:
            if self.head is not None:
                self._check_head_size(len(data))
        self._pump()
        self._update_reading()
        self.flush()

    # -- llhttp callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.head = RequestHead(self.dp.settings.max_header_bytes)
        self._head_bytes = 0

    def on_url(self, part: bytes) -> None:
        assert self.head is not None
        self.head.add_url(part, self.dp.settings.max_request_line)

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.head is not None
        self.head.add_header(name, value)

    def on_headers_complete(self) -> None:
        head, self.head = self.head, None
        assert head is not None
        parser = self._parser
        method: bytes = parser.get_method()
        if method == b"CONNECT":
            raise ProtocolError("CONNECT is not proxied", status=405)
        head.complete(method, parser.get_http_version(), parser.should_keep_alive())
        ex = Exchange(head)
        self.receiving = ex
        self.queue.append(ex)
        if self.state != BUSY:
            self.state = BUSY
            self.deadline = self.dp.now + self.dp.settings.read_timeout

    def on_body(self, data: bytes) -> None:
        ex = self.receiving
        assert ex is not None
        if ex.head.framing == req.CHUNKED:
            self._send_body(ex, chunked.encode_chunk(data))
        else:
            self._send_body(ex, (data,))

    def on_message_complete(self) -> None:
        ex, self.receiving = self.receiving, None
        assert ex is not None
        if ex.head.framing == req.CHUNKED:
            self._send_body(ex, (chunked.LAST_CHUNK,))
        ex.body_done = True

    # -- request side ------------------------------------------------------------

    def _send_body(self, ex: Exchange, pieces: tuple[bytes, ...]) -> None:
        up = ex.upstream
        if up is not None and up.transport is not None:
            up.transport.writelines(pieces)
        else:
            ex.pending.extend(pieces)

    def _check_head_size(self, received: int) -> None:
        # llhttp has no size limits of its own: count the raw bytes of an unfinished head.
        settings = self.dp.settings
        self._head_bytes += received
        if self._head_bytes > settings.max_request_line + settings.max_header_bytes:
            self._parse_failed(431)

    def _on_upgrade(self) -> None:
        # llhttp stops at an Upgrade/CONNECT request: nothing after it can be parsed. The
        # request went through without its Upgrade header; the connection closes after
        # the answer. (The WebSocket work splices the sockets here after a valid 101.)
        self._parser_dead = True
        ex = self.receiving or (self.queue[-1] if self.queue else None)
        if ex is not None:
            ex.close_after = True
            if self.receiving is ex:
                self.on_message_complete()

    def _parse_failed(self, status: int) -> None:
        """The request stream is broken: answer what came before, then ``status``."""
        self._parser_dead = True
        self.head = None
        broken, self.receiving = self.receiving, None
        if broken is not None:
            if broken is self.current:
                self._fail_current(status)
                return
            self.queue.remove(broken)  # never forwarded: it had not started yet
        self.fatal = status

    def _pump(self) -> None:
        if self._pumping:  # re-entered from _finish: the loop below continues instead
            return
        self._pumping = True
        try:
            while self.current is None and not self.closing:
                if self.queue:
                    self.current = ex = self.queue.popleft()
                    self._start(ex)
                elif self.fatal:
                    self._answer_and_close(self.fatal)
                else:
                    break
        finally:
            self._pumping = False

    def _start(self, ex: Exchange) -> None:
        dp = self.dp
        head = ex.head
        self.state = BUSY
        self.deadline = dp.now + dp.settings.connect_timeout
        host = dp.host_key(head.host)
        if host is None:
            self._fail_current(400)
            return
        route = dp.snapshot.routes.match(host, head.path)
        if route is None:
            self._fail_current(404)
            return
        plan = dp.plans.get(route.proxy)
        backend = plan.balancer.pick(plan.candidates, self.peer)
        if backend is None:
            self._fail_current(503)
            return
        ex.bucket = plan.buckets[backend.id]
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
        ex.encoded = head.encode(lines)
        conn = UpstreamPool.acquire(ex.bucket)
        if conn is not None:
            self._attach(ex, conn, reused=True)
        else:
            self._connect(ex)

    def _connect(self, ex: Exchange) -> None:
        bucket = ex.bucket
        assert bucket is not None
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
                self._fail_current(502)
                self.flush()
            return
        conn = task.result()[1]
        if ex is not self.current or self.closing:
            conn.release()  # the client went away meanwhile; the connection is still good
            return
        self._attach(ex, conn, reused=False)
        self._update_reading()
        self.flush()

    def _attach(self, ex: Exchange, conn: UpstreamConnection, *, reused: bool) -> None:
        ex.upstream = conn
        conn.reused = reused
        self.deadline = self.dp.now + self.dp.settings.read_timeout
        pending, ex.pending = ex.pending, []
        pending.insert(0, ex.encoded)
        conn.start(self, pending, head_request=ex.head.method == b"HEAD")

    # -- response side (called by UpstreamConnection) ----------------------------

    def response_interim(self, head: bytes) -> None:
        ex = self.current
        if ex is not None and not ex.head.http10:  # HTTP/1.0 clients cannot take a 1xx
            self.out.append(head)

    def response_head(self, head: ResponseHead) -> None:
        ex = self.current
        assert ex is not None
        # A response before the whole request body means the stream cannot be resynced.
        close = (
            not ex.head.keep_alive
            or ex.close_after
            or not ex.body_done
            or self._parser_dead
            or self.dp.draining
        )
        self.out.append(
            head.encode(client_http10=ex.head.http10, close=close, request_host=ex.head.host)
        )
        ex.response_started = True
        ex.close_after = head.close

    def response_done(self, conn: UpstreamConnection, *, reusable: bool) -> None:
        ex = self.current
        if ex is None or ex.upstream is not conn:
            conn.close()
            return
        ex.upstream = None
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
        # A pooled connection the backend had already closed: send the request again on a
        # fresh one, once, when no byte of an answer came and the request is safe to repeat.
        if conn.reused and not conn.got_bytes and not ex.retried and ex.head.retryable:
            ex.retried = True
            self._connect(ex)
            return
        self._fail_current(status)
        self.flush()

    def set_upstream_paused(self, paused: bool) -> None:
        self._upstream_paused = paused
        self._update_reading()

    # -- ends of exchanges ------------------------------------------------------------

    def _finish(self, ex: Exchange) -> None:
        self.current = None
        if ex.close_after or not ex.body_done:
            self._close()
            return
        if self.head is not None or self.queue:
            self.state = HEAD if self.head is not None else BUSY
            self.deadline = self.dp.now + self.dp.settings.client_header_timeout
        else:
            self.state = IDLE
            self.deadline = self.dp.now + self.dp.settings.keepalive_timeout
        if self._stash:
            data, self._stash = self._stash, b""
            self._feed(data)  # parses, starts the next exchange and fixes reading
            return
        self._pump()
        self._update_reading()

    def _fail_current(self, status: int) -> None:
        """End the current exchange with an error page, or cut it if bytes already left."""
        ex = self.current
        assert ex is not None
        self._drop_upstream(ex)
        if ex.response_started:
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
            self.out.append(pages.error_head_only(status, close=close))
        else:
            self.out.append(pages.error_response(status, close=close))
        ex.response_started = True
        ex.close_after = close
        self._finish(ex)

    def _answer_and_close(self, status: int) -> None:
        self.out.append(pages.error_response(status, close=True))
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

    # -- flow control and timers ------------------------------------------------------------

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        receiving = self.receiving
        if self._parser_dead:
            want = False
        elif receiving is not None:
            up = receiving.upstream
            want = receiving is self.current and up is not None and not self._upstream_paused
        else:
            want = not self._stash
        if want != self._reading:
            self._reading = want
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

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

    def on_timeout(self) -> None:
        """Called by the data plane's sweep once ``deadline`` has passed."""
        if self.closing:
            return
        if self.state == IDLE:
            self._close()
        elif self.current is None:
            self._answer_and_close(408)
        else:
            self._fail_current(504)
            self.flush()

    def close_if_idle(self) -> None:
        """Close unless a request is in flight or half-received (used by the drain)."""
        if self.current is None and self.head is None and not self.queue:
            self._close()
