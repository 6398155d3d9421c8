"""``tcp`` and ``tls-passthrough`` listeners: whole connections relayed to a backend.

The decisions are pure and live in ``stream_route`` (which proxy: a tcp port's one
proxy, or the ClientHello's server name on a passthrough port, read by
``protocol.client_hello``) and ``Plan.balancer`` (which backend: the proxy's algorithm
over its live backends, the same plans and health as HTTP). ``StreamConnection`` is the
thin shell: it buffers the client's first bytes until a backend is connected, writes
the optional PROXY v2 header (``protocol.proxy_v2``) first, then splices both ways with
flow control (a side whose peer's buffer is full stops reading), half-closes as the
ends do, and closes on the idle timeout. A connect that fails is reported to the
passive checks and tried once on another backend.

Limits: ``--max-connections`` per listener, ``stream.max_connections`` per proxy; over
either, the connection is closed at once. Each ended connection is counted in the
metrics with its bytes both ways and written to the access log.
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic
from typing import TYPE_CHECKING, cast

from portway.dataplane.resolve import allowed_addresses
from portway.errors import PortwayError, RemoteProtocolError
from portway.health.passive import Outcome
from portway.model import Backend, Proxy
from portway.model.proxy import STREAM_PROTOCOLS
from portway.protocol import proxy_v2
from portway.protocol.client_hello import NEED_MORE, NO_NAME, SniReader

if TYPE_CHECKING:
    from portway.dataplane.plans import Plan
    from portway.dataplane.shared import Relays
    from portway.router import Snapshot

log = logging.getLogger(__name__)
_MAX_EARLY = 256 * 1024  # client bytes held while the backend connects (then: pause)


def stream_route(snapshot: Snapshot, port: int, sni: str | None) -> Proxy | None:
    """The proxy of a relayed connection on ``port``: the port's one tcp proxy (``sni``
    None), or the passthrough proxy that routes the server name ``sni``."""
    table = snapshot.routes.on_port(port)
    if table is None:
        return None
    if sni is None:
        found = min(table.routes(), key=lambda r: r.proxy.id, default=None)
    else:
        found = table.match(sni, "/")
    if found is None or found.proxy.protocol not in STREAM_PROTOCOLS:
        return None
    return found.proxy


class _Upstream(asyncio.Protocol):
    """The backend side: hands everything to its StreamConnection."""

    __slots__ = ("client", "transport")

    def __init__(self, client: StreamConnection) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.client.from_backend(data)

    def eof_received(self) -> bool | None:
        return self.client.backend_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.backend_lost()

    def pause_writing(self) -> None:
        self.client.pause(client_side=True)

    def resume_writing(self) -> None:
        self.client.resume(client_side=True)


class StreamConnection(asyncio.Protocol):
    """One relayed client connection on a tcp or tls-passthrough port."""

    __slots__ = (
        "_early",
        "_ended",
        "_eof_early",
        "_hello",
        "_idle",
        "_last",
        "_timer",
        "backend",
        "bytes_in",
        "bytes_out",
        "closed",
        "dp",
        "peer",
        "plan",
        "port",
        "protocol",
        "sni",
        "started",
        "status",
        "transport",
        "upstream",
    )

    def __init__(self, dp: Relays, port: int, protocol: str) -> None:
        self.dp = dp
        self.port = port
        self.protocol = protocol
        self.transport: asyncio.Transport | None = None
        self.upstream: _Upstream | None = None
        self.plan: Plan | None = None
        self.backend: Backend | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.sni: str | None = None
        self.bytes_in = self.bytes_out = 0
        self.status = 0  # for the access log: 200 relayed, 4xx/5xx why it was not
        self.started = monotonic()
        self.closed = False
        self._early: list[bytes] = []  # client bytes before the backend is connected
        self._hello = SniReader() if protocol == "tls-passthrough" else None
        self._idle = dp.settings.client_header_timeout  # until routed: the hello's time
        self._last = monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._ended = 0  # directions that saw their EOF: at 2, the relay is over
        self._eof_early = False  # the client ended its side before the backend was there

    # -- client side --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        if not self.dp.admit_stream(self):
            self._refuse(503)
            return
        self._arm()
        if self._hello is None:
            self._route(None)

    def data_received(self, data: bytes) -> None:
        self._last = monotonic()
        # ``backend`` is set when the splice starts (after the PROXY header and the early
        # bytes), not when the backend's socket connects: nothing may overtake those.
        up = self._backend_transport() if self.backend is not None else None
        if up is not None:
            self.bytes_in += len(data)
            up.write(data)
            return
        self._early.append(data)
        if self._hello is not None and self.plan is None:
            self._read_hello(data)
        elif sum(map(len, self._early)) > _MAX_EARLY and self.transport is not None:
            self.transport.pause_reading()  # resumed once the backend is connected

    def eof_received(self) -> bool | None:
        if self.backend is None:  # not spliced yet
            if self.plan is None:
                self.close()  # not routed yet (a passthrough port's hello never came)
                return None
            self._eof_early = True  # passed on once the splice starts
            return True
        up = self._backend_transport()
        if up is not None and up.can_write_eof():
            up.write_eof()
            return self._half_closed()  # keep the backend's direction open
        self.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def pause_writing(self) -> None:
        self.pause(client_side=False)

    def resume_writing(self) -> None:
        self.resume(client_side=False)

    # -- routing and connecting ---------------------------------------------------

    def _read_hello(self, data: bytes) -> None:
        assert self._hello is not None
        try:
            name = self._hello.feed(data)
        except RemoteProtocolError:
            self._refuse(400)  # not TLS, or a hello no client sends: nothing is relayed
            return
        if name == NEED_MORE:
            return
        self._route(None if name == NO_NAME else name, hello=True)

    def _route(self, sni: str | None, *, hello: bool = False) -> None:
        if hello and sni is None:
            self._refuse(404)  # no server name: no proxy can be told apart
            return
        self.sni = sni
        proxy = stream_route(self.dp.snapshot, self.port, sni)
        if proxy is None:
            self._refuse(404)
            return
        if not self.dp.admit_to_proxy(self, proxy):
            self._refuse(503)
            return
        self.plan = plan = self.dp.plans.get(proxy)
        self._idle = plan.idle
        asyncio.get_running_loop().create_task(self._connect(plan, None))

    async def _connect(self, plan: Plan, failed: Backend | None) -> None:
        candidates = tuple(b for b in plan.live() if failed is None or b.id != failed.id)
        backend = plan.balancer.pick(candidates, self.peer[0])
        if backend is None or self.closed:
            self._refuse(503 if failed is None else 502)
            return
        self._count(backend, +1)
        try:
            transport = await self._open(plan, backend)
        except (OSError, TimeoutError, PortwayError) as err:
            self._count(backend, -1)
            log.debug("relay to %s:%s failed: %s", backend.address, backend.port, err)
            self.dp.plans.report(plan, backend, Outcome.CONNECT_FAILED, self.dp.now,
                                 request_sent=False)  # fmt: skip
            if failed is None and not self.closed:
                await self._connect(plan, backend)  # once more, on another backend
            else:
                self._refuse(502)
            return
        if self.closed:
            transport.close()
            self._count(backend, -1)
            return
        self.backend = backend
        self.status = 200
        self._spliced(plan, transport)

    async def _open(self, plan: Plan, backend: Backend) -> asyncio.Transport:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(plan.connect):  # the name's resolution included
            policy = self.dp.backend_policy
            addresses = await allowed_addresses(loop, backend.address, backend.port, policy)
            for ip in addresses[:-1]:
                try:
                    return await self._dial(loop, ip, backend.port)
                except OSError:
                    continue
            return await self._dial(loop, addresses[-1], backend.port)

    async def _dial(self, loop: asyncio.AbstractEventLoop, ip: str, port: int) -> asyncio.Transport:
        up = self.upstream = _Upstream(self)
        transport, _ = await loop.create_connection(lambda: up, ip, port)
        return transport

    def _spliced(self, plan: Plan, upstream: asyncio.Transport) -> None:
        if plan.proxy.stream.proxy_protocol and self.transport is not None:
            local = self.transport.get_extra_info("sockname")
            here = (str(local[0]), int(local[1])) if local else ("", 0)
            upstream.write(proxy_v2.header(self.peer, here))
        early, self._early = b"".join(self._early), []
        self.bytes_in += len(early)
        if early:
            upstream.write(early)
        if self._eof_early and upstream.can_write_eof():
            upstream.write_eof()  # e.g. a request then shutdown(SHUT_WR), as nc -N does
            self._half_closed()
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- backend side ---------------------------------------------------------------

    def from_backend(self, data: bytes) -> None:
        self._last = monotonic()
        self.bytes_out += len(data)
        if self.transport is not None:
            self.transport.write(data)

    def backend_eof(self) -> bool | None:
        transport = self.transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()
            return self._half_closed()
        self.close()
        return None

    def _half_closed(self) -> bool | None:
        """One direction ended; both ended: close (asyncio leaves a transport whose two
        halves are shut open until it is closed)."""
        self._ended += 1
        if self._ended < 2:
            return True
        self.close()
        return None

    def backend_lost(self) -> None:
        self.close()

    def pause(self, *, client_side: bool) -> None:
        """``client_side``: the backend cannot take more, so stop reading the client."""
        transport = self.transport if client_side else self._backend_transport()
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume(self, *, client_side: bool) -> None:
        transport = self.transport if client_side else self._backend_transport()
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _backend_transport(self) -> asyncio.Transport | None:
        return None if self.upstream is None else self.upstream.transport

    # -- timers, ends ---------------------------------------------------------------

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + self._idle, self._check_idle)

    def _check_idle(self) -> None:
        # One timer per connection, re-armed for the time left: no per-read timer churn.
        left = self._last + self._idle - monotonic()
        if left <= 0 and self.plan is not None and self.backend is None and not self.closed:
            # Still connecting: the connect timeout bounds that (and its one retry on
            # another backend); idleness starts counting once bytes can flow.
            self._last = monotonic()
            left = self._idle
        if left <= 0:
            self.status = self.status or 408
            self.close()
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + left, self._check_idle)

    def _count(self, backend: Backend, delta: int) -> None:
        """least_conn's in-flight count: a relayed connection counts while it is open."""
        plan = self.plan
        if plan is None or not plan.counts_load:
            return
        inflight = self.dp.plans.inflight
        left = inflight.get(backend.id, 0) + delta
        if left > 0:
            inflight[backend.id] = left
        else:
            inflight.pop(backend.id, None)

    def _refuse(self, status: int) -> None:
        self.status = status
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        up = self._backend_transport()
        if up is not None:
            up.close()
        if self.backend is not None:
            self._count(self.backend, -1)
        if self.transport is not None:
            self.transport.close()
        self.dp.forget_stream(self)
        self._record()

    def abort(self) -> None:
        """Drop both sides now (the end of a drain)."""
        up = self._backend_transport()
        if up is not None:
            up.abort()
        if self.transport is not None:
            self.transport.abort()
        self.close()

    def _record(self) -> None:
        plan, dp = self.plan, self.dp
        project = plan.proxy.project if plan is not None else ""
        label = plan.label if plan is not None else f":{self.port}"
        dp.metrics.relay(project, label, self.bytes_in, self.bytes_out)
        if dp.access_log is None:
            return
        backend = self.backend
        dp.access_log.log(
            project=project,
            proxy=label,
            backend=f"{backend.address}:{backend.port}" if backend is not None else None,
            method="TCP" if self._hello is None else "TLS",
            path=self.sni or "",
            status=self.status,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            duration_ms=round((monotonic() - self.started) * 1000, 3),
            upstream_ms=None,
            client=self.peer[0],
        )
