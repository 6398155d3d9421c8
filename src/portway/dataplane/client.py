"""One client connection: the ``asyncio.Protocol`` that carries out the decisions.

:class:`ClientConnection` owns the transport, the llhttp request parser and the output
buffer ``out``; it asks :class:`~portway.dataplane.conn_state.ConnState` (phases,
deadlines, the keep-alive rule, flow control, timeouts) and ``forwarding`` (route,
backend, retry) what to do, and does it. The backend's answer comes back through the
:class:`~portway.dataplane.upstream.ResponseSink` methods; the proxy's own answers are
bytes from ``answers``; the end of an exchange is ``recording``'s.

Requests are answered in order: bytes that arrive while a complete request waits for its
answer are stashed unparsed and reading pauses until the answer is done, so a pipelining
client never makes the proxy buffer more than one read. Requests parsed from the same
read as an earlier one wait in ``queue``. Body bytes go straight into ``out`` from the
upstream parser's callbacks, and ``flush`` writes them once per read.

Health bookkeeping costs nothing for a healthy fleet: the outlier detector is only told
about a 5xx, a failure, or while it is watching a backend (the "passive health reports"
below); persistence and HSTS only cost something when the proxy has them configured.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from time import monotonic, time
from typing import cast

import httptools

from portway.cache.entry import Entry
from portway.dataplane import answers, caching, forwarding, switching
from portway.dataplane import conn_state as cs
from portway.dataplane.caching import Flow
from portway.dataplane.conn_state import CLOSE, FEED_STASH, WAIT, ConnState
from portway.dataplane.exchange import Exchange
from portway.dataplane.guard import DENIED, PASS, ClientGuard
from portway.dataplane.picking import sticky_lines
from portway.dataplane.plans import NO_LIMIT, Plan
from portway.dataplane.pool import UpstreamPool
from portway.dataplane.recording import record, unbind
from portway.dataplane.refresh import Refresh
from portway.dataplane.shared import Shared
from portway.dataplane.tls import Handshake, handshake_of
from portway.dataplane.tunnel import Tunnel
from portway.dataplane.upstream import UpstreamConnection, connect
from portway.errors import ProtocolError, RemoteProtocolError
from portway.health.passive import Outcome
from portway.model import Backend
from portway.protocol import chunked
from portway.protocol import request as req
from portway.protocol import websocket as ws
from portway.protocol.forwarded import ForwardedContext
from portway.protocol.redirect import HSTS_LINE, has_hsts
from portway.protocol.request import RequestHead
from portway.protocol.response import ResponseHead
from portway.router import Snapshot

_HTTP11_END = b" HTTP/1.1\r\n"
_JOIN_BELOW = 16384  # a cached body up to this size is joined with its head (one send)


def _status_of(exc: Exception) -> int:
    """Map an httptools error (possibly wrapping ours) to the status to answer."""
    inner = exc.__context__
    if isinstance(inner, ProtocolError):
        return inner.status
    return 400


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "_chunk",
        "_head_bytes",
        "_last_route",
        "_parser",
        "_pumping",
        "_stash",
        "_trailer_bytes",
        "current",
        "dedicated",
        "dp",
        "fwd",
        "head",
        "listen_port",
        "out",
        "peer",
        "queue",
        "receiving",
        "state",
        "tls",
        "transport",
        "tunnel",
    )

    def __init__(self, dp: Shared, dedicated: int | None = None) -> None:
        self.dp = dp
        # The port of its own this connection came in on (its proxies' table), or None
        # for the shared listeners.
        self.dedicated = dedicated
        self.state = ConnState(dp, dp.settings)
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self.out: list[bytes] = []
        self.head: RequestHead | None = None  # the head being parsed
        self.receiving: Exchange | None = None  # the request whose body is arriving
        self.current: Exchange | None = None  # the request being answered
        self.queue: deque[Exchange] = deque()  # parsed, waiting for ``current`` to end
        self.peer = ""
        self.listen_port = 0
        self.fwd: ForwardedContext | None = None
        self.tls: Handshake | None = None  # set on HTTPS connections by connection_made
        self.tunnel: Tunnel | None = None
        self._stash = b""  # bytes read while an answer was pending, not parsed yet
        self._head_bytes = 0
        self._trailer_bytes = 0  # of the chunked request being received
        self._pumping = False
        self._chunk = b""  # the read being parsed, until its first head is complete
        # (snapshot, url, raw Host, plan) of the last routed request; see _start.
        self._last_route: tuple[Snapshot, bytes, bytes, Plan] | None = None

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance here.
        self.transport = transport = cast(asyncio.Transport, transport)
        dp = self.dp
        local = transport.get_extra_info("sockname")
        port = local[1] if local else 0
        if not dp.admit(self, port):  # the limit is per listener, as in nginx/HAProxy
            # Over the limit: answer at once rather than let the client hang. A FIN after
            # the page, no reading, and an abort a second later: closing with the request
            # unread would send a RST that can destroy the page before the client reads it.
            self.state.close()
            transport.write(answers.last_word(503))
            transport.write_eof()
            transport.pause_reading()
            asyncio.get_running_loop().call_later(1.0, transport.abort)
            return
        self.listen_port = port
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "unknown"
        self.tls = handshake_of(transport)
        self.fwd = dp.forwarded.get(self.peer, port, b"http" if self.tls is None else b"https")

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.close()
        self.dp.forget(self, self.listen_port)
        ex, self.current = self.current, None
        if ex is not None:
            self._drop_upstream(ex)
            if not ex.response_started:
                ex.status = 499  # nginx's "client closed request"
            record(self.dp, ex, self.peer, self.fwd)
        self.queue.clear()

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
        # True keeps the transport half-open: the pending answer still goes out.
        return True if self.state.client_eof(self.current is not None, bool(self.queue)) else None

    def pause_writing(self) -> None:
        # The client reads slower than the backend sends: stop reading the backend.
        ex = self.current
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.state.touch()
        ex = self.current
        if ex is not None and ex.upstream is not None:
            ex.upstream.resume_reading()

    # -- the data plane's side (Tracked) ------------------------------------------------

    def on_timeout(self) -> None:
        """Called by the data plane's sweep once ``state.expired(now)``."""
        ex = self.current
        if ex is None:
            decision = self.state.timed_out(False, False, False)
        else:
            decision = self.state.timed_out(
                True,
                ex.connect_task is not None,
                self.receiving is ex and not ex.response_started,
            )
        if decision == cs.NOTHING:
            return
        if decision == cs.CLOSE_TUNNEL:
            assert self.tunnel is not None
            self.tunnel.close()
        elif decision == cs.CLOSE_IDLE:
            self._close()
        elif decision == cs.ANSWER_408:
            self._last_word(408)
        else:
            assert ex is not None
            if decision == cs.CONNECT_FAILED:
                assert ex.connect_task is not None
                ex.connect_task.cancel()  # like a refused connection
                ex.connect_task = None
                self._backend_failed(ex, 502, Outcome.CONNECT_FAILED)
                return
            if decision == cs.BODY_408:
                self._fail(408)
            else:  # GATEWAY_TIMEOUT: the backend's fault
                if not ex.response_started and ex.backend is not None:
                    self._report(ex, Outcome.TIMED_OUT)
                self._fail(504)
            self.flush()

    def close_if_idle(self) -> None:
        """Close unless a request is in flight or half-received (used by the drain)."""
        if self.current is None and self.head is None and not self.queue:
            self._close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- reading and parsing ------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        state = self.state
        state.read()  # before the parse, whose outcome (a body's end) sets the deadline last
        # Between messages (no head, no body in progress) the read starts a request line.
        self._chunk = data if self.head is None and self.receiving is None else b""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_upgrade(data[exc.args[0] :])
        except httptools.HttpParserError as exc:
            self._parse_failed(_status_of(exc))
        else:
            if self.head is not None:
                self._check_head_size(len(data))
        self._chunk = b""
        self._pump()
        # Reading, nothing half-read or held, parser alive: reading_change would keep.
        if self.receiving is not None or self._stash or state.parser_dead or not state.reading:
            self._update_reading()
        if self.out:
            self.flush()

    def _update_reading(self) -> None:
        receiving = self.receiving
        flowing = (
            receiving is not None and receiving is self.current and receiving.upstream is not None
        )
        change = self.state.reading_change(receiving is not None, flowing, bool(self._stash))
        if change and self.transport is not None:
            if change == cs.RESUME:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    # No on_message_begin: every request starts with its URL, so the head is made by the
    # first on_url, which saves llhttp one call into Python per request.
    def on_url(self, part: bytes) -> None:
        head = self.head
        if head is None:
            settings = self.dp.settings
            # The method is known once the target starts; asked here, not at the head's end.
            head = self.head = RequestHead(settings.max_header_bytes, self._parser.get_method())
            # Raw bytes are counted from the head's first byte: that is the read's first
            # byte when the read began between messages and holds no earlier head
            # (``_chunk``); otherwise the offset is unknown and counting starts next read.
            self._head_bytes = 0 if self._chunk else -1
            head.add_url(part, settings.max_request_line)
        else:
            head.add_url(part, self.dp.settings.max_request_line)

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self.head
        if head is not None:
            head.add_header(name, value)
            return
        # After the head, llhttp's fields are a chunked body's trailer (RFC 9112 §7.1.2).
        # They are read and dropped (RFC 9110 §6.5.1 allows it when the chunked coding
        # is removed, as it is here): a backend that merged them into the head would see
        # Host or framing fields that Portway never checked. They count against the
        # head's limit, so a client cannot stream them without end.
        self._trailer_bytes += len(name) + len(value) + 4
        if self._trailer_bytes > self.dp.settings.max_header_bytes:
            raise RemoteProtocolError("request trailer fields too large", status=431)

    def on_headers_complete(self) -> None:
        head, self.head = self.head, None
        assert head is not None
        parser = self._parser
        method = head.method
        if method == b"CONNECT":
            raise ProtocolError("CONNECT is not proxied", status=405)
        # get_http_version() formats a new str each call (~240 ns). A read that began
        # between messages and starts with this very request line says the version: the
        # line is at offset 0 (a method cannot hold the SP that would make a partial method
        # from the last read line up, and llhttp-skipped CRLFs do not match). Only the
        # read's first head qualifies; any other case asks llhttp.
        chunk, self._chunk = self._chunk, b""
        if chunk and chunk.startswith(b"".join((method, b" ", head.url, _HTTP11_END))):
            version = "1.1"
        else:
            version = parser.get_http_version()
        head.complete(method, version, parser.should_keep_alive())
        ex = Exchange(head, monotonic())
        if head.upgrade is not None and ws.wants_websocket(head.upgrade):
            ex.ws_key = ws.check_request(
                method=method,
                http10=head.http10,
                connection_upgrade=head.named is not None and b"upgrade" in head.named,
                key=head.header(b"sec-websocket-key"),
                version=head.header(b"sec-websocket-version"),
            )
        # Any other Upgrade (h2c, ...) was dropped from the head: served as plain HTTP.
        self.receiving = ex
        self.queue.append(ex)  # started by _pump once the read is parsed

    def on_body(self, data: bytes) -> None:
        ex = self.receiving
        assert ex is not None
        ex.received += len(data)
        plan = ex.plan
        if plan is not None and ex.received > plan.max_body:
            # Only chunked bodies get here (a declared length was checked up front); the
            # bytes past the limit are never forwarded.
            raise RemoteProtocolError("request body too large", status=413)
        if ex.head.framing == req.CHUNKED:
            self._send_body(ex, chunked.encode_chunk(data))
        else:
            self._send_body(ex, (data,))

    def on_message_complete(self) -> None:
        ex, self.receiving = self.receiving, None
        assert ex is not None
        if ex.head.framing == req.CHUNKED:
            self._trailer_bytes = 0
            self._send_body(ex, (chunked.LAST_CHUNK,))
        ex.body_done = True
        plan = ex.plan
        if ex.upstream is not None and not ex.response_started and plan is not None:
            self.state.expect_backend(plan.first_byte, plan.idle, plan.total)  # all sent

    def _check_head_size(self, received: int) -> None:
        # llhttp has no size limits of its own: count the raw bytes of an unfinished head
        # (RequestHead counts the parsed pieces; this bounds what llhttp buffers).
        if self._head_bytes < 0:  # the head began inside this read, at an unknown offset
            self._head_bytes = 0
            return
        self._head_bytes += received
        if self._head_bytes > self.dp.settings.max_header_bytes:
            self._parse_failed(431)

    def _on_upgrade(self, rest: bytes) -> None:
        # llhttp stops at an Upgrade request: nothing after it can be parsed as HTTP. A
        # WebSocket handshake may become a tunnel (``rest`` is then its first frames);
        # anything else is answered as plain HTTP and the connection closes after it
        # (the parser is dead: see ConnState.must_close).
        self.state.stream_broken(0)
        self._stash += rest
        if self.receiving is not None:
            self.on_message_complete()

    def _parse_failed(self, status: int) -> None:
        """The request stream is broken: answer what came before, then ``status``."""
        self.head = None
        broken, self.receiving = self.receiving, None
        if broken is not None and broken is self.current:
            self.state.stream_broken(0)
            self._fail(status)
            return
        if broken is not None:
            self.queue.remove(broken)  # never forwarded: it had not started yet
        self.state.stream_broken(status)

    # -- starting exchanges ------------------------------------------------------------

    def _pump(self) -> None:
        if self._pumping:  # re-entered from _finish: the loop below continues instead
            return
        self._pumping = True
        try:
            state = self.state
            while self.current is None and not state.closing:
                if self.queue:
                    self.current = ex = self.queue.popleft()
                    self._start(ex)
                elif state.owed:
                    self._last_word(state.owed)
                else:
                    break
        finally:
            self._pumping = False

    def _start(self, ex: Exchange) -> None:
        head = ex.head
        # Keep-alive clients repeat Host and URL: the last lookup holds while the same
        # snapshot object is in force (every swap is a new object, so this is exact).
        last = self._last_route
        if (
            last is not None
            and last[0] is self.dp.snapshot
            and last[1] == head.url
            and last[2] == head.host
        ):
            plan: Plan | None = last[3]
        else:
            plan = self._route(ex)
        if plan is None:
            return  # answered already (400, 421, 404, 301)
        ex.plan = plan
        if plan.max_body != NO_LIMIT and forwarding.body_too_large(plan, head, ex.received):
            self._fail(413)  # before reading the body: we never ask for it
            return
        if plan.guard is not None and self._refused(ex, plan.guard):
            return
        # Decided once per plan: None unless cache.enabled. A WebSocket handshake is no
        # cacheable GET: its fill would hold the key for the tunnel's whole life.
        if plan.cache is not None and ex.ws_key is None:
            ex.cache = Flow(plan.cache)
            if self._cached(ex, ex.cache):
                return
        self._forward(ex, plan)

    def _forward(self, ex: Exchange, plan: Plan) -> None:
        """Pick a backend and send the request to it."""
        head = ex.head
        if plan.plain:  # forwarding.choose(), inlined: this runs once per request
            backend = plan.balancer.pick(plan.live(), self.peer)
        else:
            backend = forwarding.choose(plan, head, self.peer)
        if backend is None:
            self._fail(503)
            return
        ex.encoded = self._encode(ex.head, plan, ex.cache, ex.ws_key is not None)
        self._bind(ex, backend)

    def _encode(self, head: RequestHead, plan: Plan, flow: Flow | None, websocket: bool) -> bytes:
        """The request head for the backend, with the forwarding lines Portway adds."""
        fwd = self.fwd
        assert fwd is not None
        if not plan.forward_for:  # the proxy keeps the client's address to itself
            lines = fwd.private_lines(
                head.host, xfproto=head.xfproto, xfhost=head.xfhost, xfport=head.xfport
            )
        elif fwd.trusted:
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
        if plan.tool:  # Toolforge backends also get the URI as the client sent it
            lines += b"X-Original-URI: " + head.url + b"\r\n"
        if flow is not None and flow.conditional:  # revalidating a stored answer
            lines += flow.conditional
        # The client's target stays in head.url (the access log's, the route cache's).
        target = head.url if plan.rewrite is None else plan.rewrite.target(head.url)
        return head.encode(lines + ws.UPGRADE_LINES if websocket else lines, target)

    # -- the cache (caching.py decides; these write) ---------------------------------

    def _cached(self, ex: Exchange, flow: Flow) -> bool:
        """Answer from the cache, wait for a fill, or refuse a PURGE: True when done
        here; False when the request goes to a backend."""
        action = caching.lookup(flow, ex.head, self.peer, time())
        if action == caching.FORWARD:
            return False
        if action == caching.SERVE:
            if flow.word == caching.SWR_WORD:
                self._refresh(ex, flow)  # before serving: the flow is the exchange's
            self._serve_entry(ex, flow)
        elif action == caching.WAIT:
            plan = ex.plan
            assert plan is not None
            self.state.expect_backend(plan.first_byte, plan.idle, plan.total)
            caching.wait_on(flow, partial(self._woken, ex))
        elif not flow.cache.may_purge(self.peer, ex.head):
            self._fail(403)  # never reaches the backend
        else:
            gone = caching.purge_one(flow.cache, ex.head)
            close = self.state.must_close(ex.head.keep_alive, ex.body_done, self.dp.draining)
            self._answered(ex, 200 if gone else 404, caching.purged_answer(gone, close), close)
        return True

    def _refresh(self, ex: Exchange, flow: Flow) -> None:
        """Stale-while-revalidate: fetch the entry again in the background (once per key
        at a time), while this client gets the stale answer."""
        plan = ex.plan
        assert plan is not None
        refresh = caching.refresh_flow(flow, ex.head)
        backend = forwarding.choose(plan, ex.head, self.peer) if refresh is not None else None
        if refresh is None or backend is None:
            if refresh is not None:
                caching.finish(refresh)
            return
        request = self._encode(ex.head, plan, refresh, False)
        dp = self.dp
        Refresh(refresh, ex.head, plan, backend, request).start(
            dp.pool, dp.backend_policy, dp.upstream_tls
        )

    def _woken(self, ex: Exchange) -> None:
        """The fill this exchange waited on ended: look up again (a hit, or forward)."""
        if ex is not self.current or self.state.closing or ex.cache is None:
            return
        plan = ex.plan
        assert plan is not None
        if not self._cached(ex, ex.cache):
            self._forward(ex, plan)
        self._update_reading()
        self.flush()

    def _serve_entry(self, ex: Exchange, flow: Flow) -> None:
        entry = flow.entry
        assert entry is not None
        head = ex.head
        now = time()
        close = self.state.must_close(head.keep_alive, ex.body_done, self.dp.draining)
        if caching.not_modified(entry, flow):
            self._answered(ex, 304, caching.not_modified_head(entry, flow, now, close), close)
            return
        self._answer_stored(ex, entry, flow, now, close)
        self._finish(ex)

    def _write_entry(self, head: bytes, body: tuple[bytes, ...], size: int) -> None:
        self.out.append(head)
        if size <= _JOIN_BELOW or self.transport is None:
            self.out.extend(body)  # small: head and body leave in one send
            return
        self.flush()
        self.transport.writelines(body)  # the stored chunks themselves, never joined

    def _cache_head(self, ex: Exchange, flow: Flow, head: ResponseHead, close: bool) -> bool:
        """A backend head of a caching proxy: True when the stored entry answers instead,
        refreshed by a 304 to our validators (RFC 9111 §4.3.4) or standing in for a 5xx
        (stale-if-error, whose body is then read and dropped)."""
        now = time()
        if head.status == 304 and flow.entry is not None and flow.conditional:
            self._answer_stored(ex, caching.refreshed(flow, head, now), flow, now, close)
            return True
        if caching.stale_on_error(flow, head.status, now) and ex.upstream is not None:
            assert flow.entry is not None
            ex.upstream.drop_body()
            self._answer_stored(ex, flow.entry, flow, now, close)
            return True
        caching.on_response(flow, head, ex.head, now)
        fill = flow.fill
        if fill is not None and fill.storing and ex.upstream is not None:
            ex.upstream.tee = fill.append  # the body streams into the fill as it goes out
        return False

    def _answer_stored(
        self, ex: Exchange, entry: Entry, flow: Flow, now: float, close: bool
    ) -> None:
        """``entry`` as the answer to ``ex`` (the exchange ends when the backend's does)."""
        flow.entry = entry
        answer = caching.hit_head(entry, flow, now, close, ex.head.http10)
        body = () if ex.head.method == b"HEAD" else entry.body
        self._write_entry(answer, body, entry.body_size)
        ex.status = entry.status
        ex.bytes_out = len(answer) + entry.body_size
        ex.response_started = True
        ex.close_after = close

    def _refused(self, ex: Exchange, guard: ClientGuard) -> bool:
        """Answer 403 (a banned range) or 429 (over the rate) when the proxy's limits
        say so; False lets the request through."""
        fwd = self.fwd
        client = self.peer if fwd is None else fwd.client(ex.head.xff)
        verdict = guard.decide(client, monotonic())  # precise: dp.now is a coarse tick
        if verdict == PASS:
            return False
        plan = ex.plan
        assert plan is not None
        self.dp.metrics.refuse(plan.proxy.project, "deny" if verdict == DENIED else "rate")
        if verdict == DENIED:
            self._fail(403)
            return True
        close = self.state.must_close(ex.head.keep_alive, ex.body_done, self.dp.draining)
        page, close = answers.rate_limited(
            verdict, head_only=ex.head.method == b"HEAD", close=close
        )
        self._answered(ex, 429, page, close)
        return True

    def _route(self, ex: Exchange) -> Plan | None:
        """The plan for ``ex``, or None after answering (and then nothing is cached)."""
        dp = self.dp
        head = ex.head
        healthz = dp.settings.healthz_path
        if healthz and head.path == healthz:  # a load balancer's probe, on any host
            close = self.state.must_close(head.keep_alive, ex.body_done, dp.draining)
            page, close = answers.healthz(
                draining=dp.draining, head_only=head.method == b"HEAD", close=close
            )
            self._answered(ex, 503 if dp.draining else 200, page, close)
            return None
        host = dp.host_key(head.host)
        snapshot = dp.snapshot
        found = forwarding.route(snapshot, dp.plans, head, host, self.tls, self.dedicated)
        if isinstance(found, Plan):
            self._last_route = (snapshot, head.url, head.host, found)
            return found
        if found == forwarding.TO_HTTPS:
            assert host is not None
            close = self.state.must_close(head.keep_alive, ex.body_done, dp.draining)
            page, close = answers.redirect(host, head.url, dp.https_port, close=close)
            self._answered(ex, 301, page, close)
        elif found == forwarding.TOOL_REDIRECT:
            tools = dp.settings.toolforge
            assert tools is not None
            close = self.state.must_close(head.keep_alive, ex.body_done, dp.draining)
            location = forwarding.tool_redirect(tools, head.path, head.url)
            page, close = answers.tool_redirect(location, close=close)
            self._answered(ex, 307, page, close)
        else:
            self._fail(found)
        return None

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
        """A new connection to the exchange's backend (the pool had none)."""
        bucket, plan = ex.bucket, ex.plan
        assert bucket is not None and plan is not None
        self.state.expect_backend(plan.connect, plan.idle, plan.total)
        # A task only when the pool is empty: at steady state requests reuse connections.
        dp = self.dp
        task = ex.connect_task = connect(dp.pool, bucket, dp.backend_policy, dp.upstream_tls)
        task.add_done_callback(partial(self._connected, ex))

    def _connected(
        self, ex: Exchange, task: asyncio.Future[tuple[asyncio.BaseTransport, UpstreamConnection]]
    ) -> None:
        ex.connect_task = None
        if task.cancelled():
            return
        if task.exception() is not None:
            if ex is self.current:
                self._backend_failed(ex, 502, Outcome.CONNECT_FAILED)
            return
        conn = task.result()[1]
        if ex is not self.current or self.state.closing:
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
        wait = plan.first_byte if ex.body_done else plan.idle
        self.state.expect_backend(wait, plan.idle, plan.total)
        pending = ex.pending
        if pending:  # body bytes read before a connection was bound: one send with the head
            ex.pending = None
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
        elif ex.pending is None:
            ex.pending = list(pieces)
        else:
            ex.pending.extend(pieces)

    def _backend_failed(
        self, ex: Exchange, status: int, outcome: Outcome = Outcome.NO_ANSWER
    ) -> None:
        """Connecting failed or the backend hung up unanswered: retry elsewhere once."""
        self._report(ex, outcome)
        other = forwarding.retry_backend(ex, self.peer)
        if other is not None:
            ex.retried = True
            unbind(self.dp, ex)
            self._bind(ex, other)
            self._update_reading()
        else:
            self._fail(status)
        self.flush()

    def _drop_upstream(self, ex: Exchange) -> None:
        if ex.connect_task is not None:
            ex.connect_task.cancel()
            ex.connect_task = None
        up, ex.upstream = ex.upstream, None
        if up is not None:
            up.abort()

    # -- passive health reports ------------------------------------------------------------

    def _report(self, ex: Exchange, outcome: Outcome, status: int = 0) -> None:
        """What happened to this exchange on its backend, for the outlier detector (an
        answer is reported only when it is a 5xx or the detector is watching)."""
        plan, backend = ex.plan, ex.backend
        assert plan is not None and backend is not None
        self.dp.plans.report(
            plan, backend, outcome, self.dp.now, request_sent=ex.body_done, status=status
        )

    # -- the backend's answer (ResponseSink) ------------------------------------------------

    def backend_active(self) -> None:
        self.state.touch()

    def response_interim(self, head: bytes) -> None:
        ex = self.current
        if ex is not None and not ex.head.http10:  # HTTP/1.0 clients cannot take a 1xx
            self.out.append(head)

    def response_head(self, head: ResponseHead) -> None:
        ex = self.current
        assert ex is not None
        dp = self.dp
        request = ex.head
        close = self.state.must_close(request.keep_alive, ex.body_done, dp.draining)
        ex.status = status = head.status
        plan = ex.plan
        assert plan is not None
        if status >= 500 or dp.plans.outliers.watching:
            self._report(ex, Outcome.ANSWERED, status)
        fwd = self.fwd
        assert fwd is not None
        extra = b""
        flow = ex.cache
        if flow is not None:
            if self._cache_head(ex, flow, head, close):
                return
            extra = caching.status_header(flow.word)
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
        if ex.cache is not None:
            ex.cache.complete = True  # the whole body arrived: the fill may commit
        if reusable and ex.body_done:  # conn.release(), inlined: once per request
            if conn.pool.release(conn.bucket, conn) is not None:
                conn.close()  # no longer usable
        else:
            conn.close()
        self._finish(ex)

    def upstream_failed(
        self, conn: UpstreamConnection, status: int, outcome: Outcome | None
    ) -> None:
        ex = self.current
        if ex is None or ex.upstream is not conn:
            return
        ex.upstream = None
        if outcome is not None:
            self._report(ex, outcome)
        decision = forwarding.after_failure(ex, conn.got_bytes, conn.reused)
        if decision == forwarding.RECONNECT:
            ex.stale_retried = True  # a pooled connection the backend had closed
            self._connect(ex)
        elif decision == forwarding.RETRY:
            self._backend_failed(ex, status)
        else:
            self._fail(status)
            self.flush()

    def set_upstream_paused(self, paused: bool) -> None:
        self.state.set_upstream_paused(paused)
        self._update_reading()

    def switching(self, head: ResponseHead) -> bool:
        ex = self.current
        if ex is None:
            return False
        encoded = switching.accept(ex.ws_key, head)
        if encoded is None:
            return False
        self.out.append(encoded)
        ex.status = 101
        ex.response_started = True
        ex.bytes_out = len(encoded)
        return True

    def splice(self, conn: UpstreamConnection, rest: bytes) -> None:
        """Turn this connection and ``conn`` into a raw tunnel (after ``switching``)."""
        ex = self.current
        assert ex is not None and ex.plan is not None and ex.backend is not None
        assert self.transport is not None
        upstream = conn.hand_over()
        ex.upstream = None
        self.flush()
        if self.dp.plans.outliers.watching:
            self._report(ex, Outcome.ANSWERED, 101)
        self.state.tunnel_opened(ex.plan.websocket_idle)
        self.tunnel = Tunnel(self.state, self.transport, upstream, self._tunnel_closed)
        stash, self._stash = self._stash, b""
        self.tunnel.open(rest, stash)

    def _tunnel_closed(self, tunnel: Tunnel) -> None:
        """The tunnel ended: forget the connection, record the exchange with its byte counts."""
        self.dp.forget(self, self.listen_port)
        ex, self.current = self.current, None
        if ex is not None:
            ex.received += tunnel.bytes_up
            ex.bytes_out += tunnel.bytes_down
            record(self.dp, ex, self.peer, self.fwd)

    # -- the proxy's own answers ------------------------------------------------------------

    def _fail(self, status: int) -> None:
        """End the current exchange with an error page, or cut it if bytes already left."""
        ex = self.current
        assert ex is not None
        self._drop_upstream(ex)
        if ex.response_started:
            record(self.dp, ex, self.peer, self.fwd)
            self._close()
            return
        close = self.state.must_close(ex.head.keep_alive, ex.body_done, self.dp.draining)
        page, close = answers.error_page(status, head_only=ex.head.method == b"HEAD", close=close)
        self._answered(ex, status, page, close)

    def _answered(self, ex: Exchange, status: int, answer: bytes, close: bool) -> None:
        self.out.append(answer)
        ex.status = status
        ex.bytes_out = len(answer)
        ex.response_started = True
        ex.close_after = close
        self._finish(ex)

    def _last_word(self, status: int) -> None:
        """A page outside any exchange (a broken stream, a slow head), then close."""
        self.out.append(answers.last_word(status))
        self.dp.metrics.observe("", "", status, 0.0)
        self._close()

    # -- ends of exchanges ------------------------------------------------------------

    def _finish(self, ex: Exchange) -> None:
        record(self.dp, ex, self.peer, self.fwd)
        self.current = None
        state = self.state
        close = ex.close_after or not ex.body_done
        decision = state.exchange_done(close, self.head is not None, self.queue, self._stash)
        if decision == WAIT:  # the usual keep-alive case first
            pass
        elif decision == CLOSE:
            self._close()
            return
        elif decision == FEED_STASH:
            data, self._stash = self._stash, b""
            self._feed(data)  # parses, starts the next exchange and fixes reading
            return
        else:  # START_NEXT
            self._pump()
        if self.receiving is not None or state.parser_dead or not state.reading:
            self._update_reading()  # (no stash here: it was fed above)

    def _close(self) -> None:
        self.state.close()
        self.flush()
        if self.transport is not None:
            self.transport.close()  # close() sends what is buffered first

    def flush(self) -> None:
        out = self.out
        if out and self.transport is not None:
            # One write per read: head and body of a small response leave in one send().
            # uvloop's write() tries send() at once; writelines() queues a uv_write first,
            # which measured ~2x slower for small responses, so small pieces are joined.
            pieces = len(out)
            if pieces == 1:
                self.transport.write(out[0])
            elif pieces < 8:
                self.transport.write(b"".join(out))
            else:
                self.transport.writelines(out)
            out.clear()
