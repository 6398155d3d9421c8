"""One keep-alive connection to a backend, as an ``asyncio.Protocol``.

Response bytes are parsed by llhttp and written straight into the client's output list
from the parser callbacks; the client flushes that list once per ``data_received``, so a
small response leaves in one ``write`` with no ``await`` and no task anywhere.

The upstream side knows the client connection only as a :class:`ResponseSink`, the
small interface below, so this module imports nothing of the client side. New
connections are opened by :func:`connect`, the one place that dials a backend; it
enforces the operator's backend policy on the address actually connected to, and speaks
TLS to a backend whose bucket says so (``Backend.tls``; the rule of what is sent and
verified is in ``portway.tls.upstream``). The handshake is part of the connect: a
failed one is a connect failure (502, retried elsewhere, counted by the passive
checks), and a stalled one is bounded by the same connect timeout.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, cast

import httptools

from portway.dataplane.resolve import allowed_addresses
from portway.errors import ProtocolError, RefusedAddressError
from portway.health.passive import Outcome
from portway.model.backend_policy import BackendPolicy
from portway.protocol import chunked
from portway.protocol import response as resp
from portway.protocol.response import ResponseHead

if TYPE_CHECKING:
    from portway.dataplane.pool import Bucket, UpstreamPool


class ResponseSink(Protocol):
    """What an upstream connection calls on the client connection it answers."""

    out: list[bytes]  # the client's output: body bytes go straight in, flushed per read

    def backend_active(self) -> None:
        """Bytes arrived from the backend: its idle timer restarts."""

    def response_interim(self, head: bytes) -> None:
        """A 1xx other than 101, encoded."""

    def response_head(self, head: ResponseHead) -> None:
        """The final response head (the body follows through ``out``)."""

    def response_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        """The response is complete; ``reusable``: the connection may go back to the pool."""

    def upstream_failed(
        self, conn: UpstreamConnection, status: int, outcome: Outcome | None
    ) -> None:
        """The connection failed or broke the protocol; ``status`` is the answer to give,
        ``outcome`` what the outlier detector is to hear (None: the sink decides, since a
        pooled connection that died unused is no failure of the backend)."""

    def set_upstream_paused(self, paused: bool) -> None:
        """The connection's write buffer passed its high-water mark (or drained)."""

    def switching(self, head: ResponseHead) -> bool:
        """A 101: True when it completes the client's WebSocket handshake."""

    def splice(self, conn: UpstreamConnection, rest: bytes) -> None:
        """Take over the connection's transport as a tunnel; ``rest`` was read past the 101."""

    def flush(self) -> None:
        """Write what ``out`` holds."""


def connect(
    pool: UpstreamPool[UpstreamConnection],
    bucket: Bucket[UpstreamConnection],
    policy: BackendPolicy,
    tls: ssl.SSLContext,
) -> asyncio.Task[tuple[asyncio.BaseTransport, UpstreamConnection]]:
    """Open a new connection to ``bucket``'s backend address (the only place that dials
    one) on an address ``policy`` allows, through ``tls`` when the bucket is a TLS one;
    the task's result is ``(transport, connection)``."""
    loop = asyncio.get_running_loop()
    factory = partial(UpstreamConnection, pool, bucket)
    return loop.create_task(open_upstream(loop, factory, bucket, policy, tls))


log = logging.getLogger("portway.dataplane")
_REFUSAL_LOG_INTERVAL = 60.0  # seconds between warnings about one backend address


async def open_upstream(
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], UpstreamConnection],
    bucket: Bucket[Any],
    policy: BackendPolicy,
    tls: ssl.SSLContext,
) -> tuple[asyncio.BaseTransport, UpstreamConnection]:
    """Connect to ``bucket``'s backend on an address ``policy`` allows, or raise (the
    caller answers 502 and counts a connect failure, as for an unreachable backend)."""
    host, port = bucket.host, bucket.port
    try:
        addresses = await allowed_addresses(loop, host, port, policy)
    except RefusedAddressError as exc:
        _refused(loop, bucket, exc.message)
    # The backend's own name is what is verified and sent as SNI, never the resolved
    # IP (the ssl module sends no SNI for an IP address, and matches it to IP SANs).
    wrap: dict[str, Any] = {"ssl": tls, "server_hostname": host} if bucket.tls else {}
    error: OSError = OSError(f"{host} has no address")
    for ip in addresses:  # in the resolver's order, as create_connection would try them
        try:
            transport, conn = await loop.create_connection(factory, ip, port, **wrap)
        except OSError as exc:  # ssl.SSLError too: a failed handshake is a failed connect
            error = exc
            continue
        if policy.check_local(port) is not None and _reached_self(transport):
            transport.abort()
            _refused(loop, bucket, f"{ip}:{port} is this node's own listener")
        return transport, conn
    raise error


def _reached_self(transport: asyncio.BaseTransport) -> bool:
    """Whether the connection went to one of this node's own addresses (the kernel picks
    the destination itself as the source address of a local route)."""
    local = transport.get_extra_info("sockname")
    peer = transport.get_extra_info("peername")
    return bool(local and peer and local[0] == peer[0])


def _refused(loop: asyncio.AbstractEventLoop, bucket: Bucket[Any], reason: str) -> NoReturn:
    """Log (at most once a minute per address) and raise: the caller answers 502."""
    now = loop.time()
    if now - bucket.refusal_logged >= _REFUSAL_LOG_INTERVAL:
        bucket.refusal_logged = now
        log.warning("backend policy refused %s:%s: %s", bucket.host, bucket.port, reason)
    raise RefusedAddressError(reason, field="address")


def _ignore(_data: bytes) -> None:
    pass


class _HeadBodySkipped(Exception):
    """Raised from the head callback of a HEAD response: llhttp cannot be told that the
    response has no body, so parsing stops there and the parser is replaced."""


_SKIP: Final = _HeadBodySkipped()


class _Callbacks:
    """The parser's callback holder (see UpstreamConnection._new_parser)."""

    __slots__ = ("on_body", "on_header", "on_headers_complete", "on_message_complete", "on_status")
    on_body: Callable[[bytes], None]
    on_header: Callable[[bytes, bytes], None]
    on_headers_complete: Callable[[], None]
    on_message_complete: Callable[[], None]
    on_status: Callable[[bytes], None]


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_head_request",
        "_interim",
        "_keep_alive",
        "_parser",
        "body_bytes",
        "bucket",
        "client",
        "dropping",
        "got_bytes",
        "head",
        "pool",
        "response_started",
        "reused",
        "switched",
        "tee",
        "transport",
        "usable",
    )

    def __init__(self, pool: UpstreamPool[UpstreamConnection], bucket: Bucket[Any]) -> None:
        self.pool = pool
        self.bucket = bucket
        self.transport: asyncio.Transport | None = None
        self.head = ResponseHead()
        self._parser = self._new_parser()
        self.client: ResponseSink | None = None
        self.usable = False
        self.reused = False
        self.got_bytes = False
        self.response_started = False
        self.switched = False
        self.body_bytes = 0
        # The cache's fill of this response (ClientConnection sets it): body chunks go
        # to it as well as to the client, so they are stored while they stream.
        self.tee: Callable[[bytes], None] | None = None
        self.dropping = False  # the body is read to its end but goes nowhere
        self._head_request = False
        self._interim = False
        self._keep_alive = True

    def _new_parser(self) -> Any:
        # llhttp calls whatever the callback object holds: handing it the head's own
        # add_header saves a Python frame per response header.
        callbacks = _Callbacks()
        callbacks.on_status = self.on_status
        callbacks.on_header = self.head.add_header
        callbacks.on_headers_complete = self.on_headers_complete
        callbacks.on_body = self.on_body
        callbacks.on_message_complete = self.on_message_complete
        return httptools.HttpResponseParser(callbacks)

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance here.
        self.transport = cast(asyncio.Transport, transport)
        self.usable = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        client, self.client = self.client, None
        if client is None:
            return
        if self.response_started and self.head.framing == resp.UNTIL_CLOSE:
            if self.head.rechunk:
                client.out.append(chunked.LAST_CHUNK)
            client.response_done(self, False)
        else:
            # Without a byte, the sink decides (a dead pooled connection is no failure).
            outcome = Outcome.NO_ANSWER if self.got_bytes and not self.response_started else None
            client.upstream_failed(self, 502, outcome)
        client.flush()

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.set_upstream_paused(True)

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.set_upstream_paused(False)

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # bytes on an idle connection: the backend broke the protocol
            self.close()
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # llhttp stops after a 101; what follows its head is the new protocol's.
            if self.switched:
                client.splice(self, data[exc.args[0] :])
                return
            self._fail(client, 502)
        except _HeadBodySkipped:
            self._parser = self._new_parser()
            self._message_done()
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadBodySkipped):
                self._parser = self._new_parser()
                self._message_done()
            else:
                status = getattr(exc.__context__, "status", 502)
                self._fail(client, status if isinstance(exc.__context__, ProtocolError) else 502)
        except httptools.HttpParserError:
            self._fail(client, 502)
        # The same answer goes on: restart the backend's idle timer. A complete answer set
        # the client's timers instead, and may have sent the client's next request on this
        # very connection (start() cleared got_bytes), whose first-byte timer must hold.
        if self.got_bytes and self.client is not None:
            client.backend_active()
        client.flush()

    # -- called by the client side ------------------------------------------------------------

    def start(self, client: ResponseSink, data: bytes, head_request: bool) -> None:
        """Bind to ``client`` and send the request head plus any body bytes already read."""
        self.client = client
        self.head.reset()
        self.got_bytes = False
        self.response_started = False
        self.body_bytes = 0
        self.tee = None
        self.dropping = False
        self._head_request = head_request
        assert self.transport is not None
        # write() of one buffer takes uvloop's immediate-send fast path (see flush()).
        self.transport.write(data)

    def drop_body(self) -> None:
        """Read this response's body to its end without passing it on (the client got
        another answer: a stale cached one, under stale-if-error); the connection stays
        reusable."""
        self.tee = _ignore
        self.dropping = True

    def pause_reading(self) -> None:
        """The client reads slower than the backend sends: stop reading the backend."""
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def hand_over(self) -> asyncio.Transport:
        """Give the transport to a tunnel: never back to the pool, no more callbacks."""
        assert self.transport is not None
        self.client = None
        self.usable = False  # it speaks WebSocket now
        return self.transport

    def close(self) -> None:
        """Close without reuse: the connection's framing state is unknown."""
        self.usable = False
        self.client = None
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.usable = False
        self.client = None
        if self.transport is not None:
            self.transport.abort()

    # -- llhttp callbacks ------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        head = self.head
        head.reason = head.reason + reason if head.reason else reason

    def on_headers_complete(self) -> None:
        status: int = self._parser.get_status_code()
        client = self.client
        assert client is not None
        if status < 200:
            if status == 101:
                # Only a 101 that completes the client's own WebSocket handshake is taken.
                if not client.switching(self.head):
                    raise ProtocolError("unexpected or invalid 101 from backend", status=502)
                self.switched = True
                return
            self._interim = True
            client.response_interim(self.head.encode_interim(status))
            self.head.reset()
            return
        self._keep_alive = self._parser.should_keep_alive()
        self.head.complete(status, head_request=self._head_request)
        self.response_started = True
        client.response_head(self.head)
        if self._head_request:
            raise _SKIP

    def on_body(self, data: bytes) -> None:
        client = self.client
        assert client is not None
        self.body_bytes += len(data)
        tee = self.tee
        if tee is not None:
            tee(data)
            if self.dropping:
                return
        if self.head.rechunk:
            client.out.extend(chunked.encode_chunk(data))
        else:
            client.out.append(data)

    def on_message_complete(self) -> None:
        if self._interim or self.switched:
            self._interim = False
            return
        client, self.client = self.client, None
        if client is not None:  # _message_done(), inlined: this runs once per response
            if self.head.rechunk:
                client.out.append(chunked.LAST_CHUNK)
            client.response_done(self, self._keep_alive)

    # -- internals ------------------------------------------------------------

    def _message_done(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.response_done(self, self._keep_alive)

    def _fail(self, client: ResponseSink, status: int) -> None:
        self.abort()  # never reuse a connection whose framing we could not follow
        client.upstream_failed(self, status, Outcome.BAD_RESPONSE)

    def release(self) -> None:
        """Back to the pool; the pool's decision says whether to close instead."""
        self.client = None
        evicted = self.pool.release(self.bucket, self)
        if evicted is not None:
            evicted.close()
