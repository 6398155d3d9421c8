"""One client connection: parse requests and feed them to the exchange side.

States: IDLE (keep-alive, waiting for a first byte), HEAD (a request head is arriving;
the slowloris timer runs), BUSY (an exchange is in flight), TUNNEL (spliced to a backend
after a WebSocket 101; see ``tunnel``). Requests are answered in order: bytes that arrive
while a complete request waits for its answer are stashed unparsed and reading pauses
until the answer is done, so a pipelining client never makes the proxy buffer more than
one read. Requests parsed from the same read as an earlier one wait in ``queue``.

Flow control and timeouts live in ``pacing``; what happens once a head is parsed lives
in ``downstream``.
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import TYPE_CHECKING, cast

import httptools

from portway.dataplane.answers import answer_and_close, fail_current
from portway.dataplane.exchange import Exchange
from portway.dataplane.pacing import Pacing
from portway.dataplane.recording import record
from portway.dataplane.responding import BUSY, HEAD, IDLE, NEVER
from portway.dataplane.tls import handshake_of
from portway.errors import ProtocolError, RemoteProtocolError
from portway.protocol import chunked, pages
from portway.protocol import request as req
from portway.protocol import websocket as ws
from portway.protocol.request import RequestHead

if TYPE_CHECKING:
    from portway.dataplane.server import DataPlane


_HTTP11_END = b" HTTP/1.1\r\n"


def _status_of(exc: Exception) -> int:
    """Map an httptools error (possibly wrapping ours) to the status to answer."""
    inner = exc.__context__
    if isinstance(inner, ProtocolError):
        return inner.status
    return 400


class ClientConnection(Pacing):
    __slots__ = (
        "_chunk",
        "_head_bytes",
        "_parser",
        "_pumping",
        "fatal",
        "head",
        "listen_port",
    )

    def __init__(self, dp: DataPlane) -> None:
        super().__init__(dp)
        self._parser = httptools.HttpRequestParser(self)
        self.head: RequestHead | None = None
        self.fatal = 0
        self._head_bytes = 0
        self._pumping = False
        self._chunk = b""  # the read being parsed, until its first head is complete
        self.listen_port = 0

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance here.
        self.transport = cast(asyncio.Transport, transport)
        dp = self.dp
        local = transport.get_extra_info("sockname")
        port = local[1] if local else 0
        counts = dp.listener_connections  # the limit is per listener, as in nginx/HAProxy
        if counts.get(port, 0) >= dp.settings.max_connections:
            # Over the limit: answer at once rather than let the client hang. A FIN after
            # the page, no reading, and an abort a second later: closing with the request
            # unread would send a RST that can destroy the page before the client reads it.
            self.closing = True
            self.transport.write(pages.error_response(503, close=True))
            self.transport.write_eof()
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(1.0, self.transport.abort)
            return
        counts[port] = counts.get(port, 0) + 1
        self.listen_port = port
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "unknown"
        self.tls = handshake_of(transport)
        self.fwd = dp.forwarded.get(self.peer, port, b"http" if self.tls is None else b"https")
        dp.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._forget()
        ex, self.current = self.current, None
        if ex is not None:
            self._drop_upstream(ex)
            if not ex.response_started:
                ex.status = 499  # nginx's "client closed request"
            record(self, ex)
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
            self.deadline = self.dp.now + self.idle
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
        # Reading, nothing half-read or held, parser alive: _update_reading would not act.
        if self.receiving is not None or self._stash or self._parser_is_dead or not self._reading:
            self._update_reading()
        if self.out:
            self.flush()

    # -- llhttp callbacks ------------------------------------------------------------

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
        assert self.head is not None
        self.head.add_header(name, value)

    def on_headers_complete(self) -> None:
        head, self.head = self.head, None
        assert head is not None
        parser = self._parser
        method = head.method
        if method == b"CONNECT":
            raise ProtocolError("CONNECT is not proxied", status=405)
        head.complete(method, self._version(method, head.url), parser.should_keep_alive())
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
        self.queue.append(ex)
        if self.state != BUSY:
            self.state = BUSY
            self.deadline = self.dp.now + self.idle

    def _version(self, method: bytes, url: bytes) -> str:
        # get_http_version() formats a new str each call (~240 ns). A read that began
        # between messages and starts with this very request line says the version: the
        # line is at offset 0 (a method cannot hold the SP that would make a partial method
        # from the last read line up, and llhttp-skipped CRLFs do not match). Only the
        # read's first head qualifies; any other case asks llhttp.
        chunk, self._chunk = self._chunk, b""
        if chunk and chunk.startswith(b"".join((method, b" ", url, _HTTP11_END))):
            return "1.1"
        version: str = self._parser.get_http_version()
        return version

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
            self._send_body(ex, (chunked.LAST_CHUNK,))
        ex.body_done = True
        if ex.upstream is not None and not ex.response_started and ex.plan is not None:
            self.deadline = self.dp.now + ex.plan.first_byte  # the request is all sent

    # -- request side ------------------------------------------------------------

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
        # anything else is answered as plain HTTP and the connection closes after it.
        self._parser_is_dead = True
        self._stash += rest
        ex = self.receiving or (self.queue[-1] if self.queue else None)
        if ex is not None:
            ex.close_after = True
            if self.receiving is ex:
                self.on_message_complete()

    def _parse_failed(self, status: int) -> None:
        """The request stream is broken: answer what came before, then ``status``."""
        self._parser_is_dead = True
        self.head = None
        broken, self.receiving = self.receiving, None
        if broken is not None:
            if broken is self.current:
                fail_current(self, status)
                return
            self.queue.remove(broken)  # never forwarded: it had not started yet
        self.fatal = status

    def _forget(self) -> None:
        dp = self.dp
        if self in dp.connections:  # refused connections were never counted
            dp.connections.discard(self)
            dp.listener_connections[self.listen_port] -= 1

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
                    answer_and_close(self, self.fatal)
                else:
                    break
        finally:
            self._pumping = False

    # -- ends of exchanges ------------------------------------------------------------

    def _finish(self, ex: Exchange) -> None:
        record(self, ex)
        self.current = None
        self.hard_deadline = NEVER
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
        if self.queue or self.fatal:  # nothing to start otherwise: spare the call
            self._pump()
        if self.receiving is not None or self._parser_is_dead or not self._reading:
            self._update_reading()  # (no stash here: it was fed above)

    def close_if_idle(self) -> None:
        """Close unless a request is in flight or half-received (used by the drain)."""
        if self.current is None and self.head is None and not self.queue:
            self._close()
