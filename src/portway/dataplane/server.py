"""The data plane's front: listeners, the applied Snapshot, the shared timers.

Timeouts use one coarse sweep per data plane instead of a timer per request: each
connection's state keeps a ``deadline`` float, which costs an attribute store on the hot
path instead of a TimerHandle allocation and a heap push per request. The same sweep ends
passive-health back-offs and trims the upstream pool's surplus idle connections.

Health comes in two ways: ``set_health`` (the verdicts of the active checks, run by the
control process) and the passive outlier detector fed by this data plane's own traffic.

Besides the two shared listeners, a data plane opens the ports its snapshot's proxies
claim (issue 13) as soon as it applies the snapshot, and closes those no proxy claims
any more; ``listeners.plan`` decides, ``_sync_listeners`` carries it out, one step at a
time, so a burst of snapshots never opens a port twice.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from portway.cache.store import Purge
from portway.dataplane import listeners
from portway.dataplane.client import ClientConnection
from portway.dataplane.listeners import ListenerKey
from portway.dataplane.plans import Plans
from portway.dataplane.pool import UpstreamPool
from portway.dataplane.settings import DataPlaneSettings
from portway.dataplane.shared import Relayed, Tracked
from portway.dataplane.sockets import reuseport_socket
from portway.dataplane.stream import StreamConnection
from portway.dataplane.tls import TlsContexts
from portway.dataplane.upstream import UpstreamConnection
from portway.errors import ConfigError
from portway.model import Proxy
from portway.model.backend_policy import BackendPolicy
from portway.model.listen_policy import ListenPolicy
from portway.model.proxy import STREAM_PROTOCOLS
from portway.observability.access_log import AccessLog
from portway.observability.metrics import RequestMetrics
from portway.protocol.forwarded import ForwardedContexts, parse_networks
from portway.router import Snapshot, normalize_request_host
from portway.tls.upstream import upstream_context

_HOST_CACHE_LIMIT = 10_000
log = logging.getLogger(__name__)


def _tick_of(s: DataPlaneSettings) -> float:
    """The sweep interval: a quarter of the shortest timeout, within [20 ms, 1 s]."""
    shortest = min(s.connect_timeout, s.read_timeout, s.client_header_timeout)
    return max(0.02, min(1.0, shortest / 4))


class DataPlane:
    """The built-in HTTP/1.1 reverse proxy. One per event loop (per worker process).

    It is the ``Shared`` of its client connections (see ``shared``)."""

    def __init__(
        self,
        settings: DataPlaneSettings | None = None,
        *,
        access_log: AccessLog | None = None,
        backend_policy: BackendPolicy | None = None,
        listen_policy: ListenPolicy | None = None,
    ) -> None:
        self.settings = settings or DataPlaneSettings()
        # The ports proxies may claim (--listen-ports): nothing else is ever opened.
        self.listen_policy = listen_policy or ListenPolicy()
        # Checked right before each new backend connection (see upstream.open_upstream).
        self.backend_policy = backend_policy or BackendPolicy()
        self.upstream_tls = upstream_context(self.settings.upstream_ca_file)
        self.networks = parse_networks(self.settings.trusted_proxies)
        self.forwarded = ForwardedContexts(self.networks)  # shared per peer, port, scheme
        self.snapshot = Snapshot(version=0)
        self.pool: UpstreamPool[UpstreamConnection] = UpstreamPool(self.settings.upstream_pool_size)
        self.plans = Plans(self.pool, self.settings)
        self.metrics = RequestMetrics()  # updated once per finished request
        self.plans.cache_counters = self.metrics.cache  # the caches count into /metrics
        self.access_log = access_log
        self.connections: set[Tracked] = set()
        self.listener_connections: dict[int, int] = {}  # listening port → open connections
        self.draining = False
        self.now = 0.0
        self._servers: list[asyncio.Server] = []
        self._ticker: asyncio.TimerHandle | None = None
        self._hosts: dict[bytes, str | None] = {}
        self.port_servers: dict[ListenerKey, asyncio.Server] = {}  # open per-port listeners
        self.listener_errors: dict[ListenerKey, str] = {}  # why one could not open
        self._serving = False  # the shared listeners are open: per-port ones may follow
        self._syncing: asyncio.Task[None] | None = None
        self._resync = False
        self.streams: set[Relayed] = set()  # relayed (tcp, tls-passthrough)
        self._per_proxy: dict[str, int] = {}  # proxy id → its relayed connections
        self.tls = TlsContexts()  # call tls.load_default(...) before listen_https
        self.https_port = 0  # where plain-HTTP requests are redirected (0: 443)
        self._tick = _tick_of(self.settings)

    # -- configuration ------------------------------------------------------------

    def apply(self, snapshot: Snapshot) -> None:
        """Serve ``snapshot`` from the next request on; one assignment, so atomic."""
        self.snapshot = snapshot
        self.tls.apply(snapshot.certificates, snapshot.routes)
        # O(proxies with state), not O(table): a change on a 100 000-proxy table stays cheap.
        self.plans.prune(snapshot.routes)
        self.plans.set_cache_limits(snapshot.cache_limits)
        self._hosts.clear()  # cheap; keeps the cache from holding hosts of old tables
        self._want_listeners()

    def reconfigure(self, settings: DataPlaneSettings) -> None:
        """Switch to ``settings`` from the next connection or request on (SIGHUP).

        Limits and timeouts are read where they are used, so swapping the object is
        enough; the per-proxy plans recompute their timeout ceilings, and connections
        open already keep the trusted-proxy view they started with. The pool size and
        the passive-health thresholds stay as they were built (the caller keeps them).
        """
        if settings.trusted_proxies != self.settings.trusted_proxies:
            self.networks = parse_networks(settings.trusted_proxies)
            self.forwarded = ForwardedContexts(self.networks)
        self.settings = settings
        self.plans.retime(settings)
        self._tick = _tick_of(settings)

    @property
    def applied_version(self) -> int:
        return self.snapshot.version

    def set_health(self, down: frozenset[tuple[str, str]]) -> None:
        """The (proxy id, backend id) pairs the active checks declare down, as a whole set;
        it takes effect from the next request."""
        self.plans.set_down(down)

    def purge(self, proxy_id: str, purge: Purge) -> int:
        """Drop what ``purge`` matches from proxy ``proxy_id``'s cache; how many entries."""
        cache = self.plans.caches().get(proxy_id)
        return 0 if cache is None else purge.apply(cache)

    def ejected(self) -> frozenset[tuple[str, str]]:
        """The (proxy id, backend id) pairs passive checks have ejected right now."""
        return self.plans.outliers.ejected()

    @property
    def open_connections(self) -> int:
        """Client connections open now (WebSocket tunnels included)."""
        return len(self.connections)

    def admit(self, conn: Tracked, port: int) -> bool:
        """Count a new client connection on listener ``port``; False when it is full."""
        counts = self.listener_connections
        count = counts.get(port, 0)
        if count >= self.settings.max_connections:
            return False
        counts[port] = count + 1
        self.connections.add(conn)
        return True

    def forget(self, conn: Tracked, port: int) -> None:
        """A connection closed (or became a finished tunnel); refused ones never counted."""
        if conn in self.connections:
            self.connections.discard(conn)
            self.listener_connections[port] -= 1

    def admit_stream(self, conn: Relayed) -> bool:
        """Count a relayed connection on its listener; False when the listener is full."""
        counts = self.listener_connections
        count = counts.get(conn.port, 0)
        if count >= self.settings.max_connections or self.draining:
            return False
        counts[conn.port] = count + 1
        self.streams.add(conn)
        return True

    def admit_to_proxy(self, conn: Relayed, proxy: Proxy) -> bool:
        """Count ``conn`` on ``proxy``; False when its ``stream.max_connections`` is reached."""
        count = self._per_proxy.get(proxy.id, 0)
        limit = proxy.stream.max_connections
        if limit is not None and count >= limit:
            return False
        self._per_proxy[proxy.id] = count + 1
        return True

    def forget_stream(self, conn: Relayed) -> None:
        if conn not in self.streams:
            return  # refused before it was counted
        self.streams.discard(conn)
        self.listener_connections[conn.port] -= 1
        if conn.plan is not None:
            pid = conn.plan.proxy.id
            left = self._per_proxy.get(pid, 1) - 1
            if left > 0:
                self._per_proxy[pid] = left
            else:
                self._per_proxy.pop(pid, None)

    def host_key(self, raw: bytes) -> str | None:
        """Host header → route-table key, cached per raw spelling (clients repeat it)."""
        try:
            return self._hosts[raw]
        except KeyError:
            key = normalize_request_host(raw.decode("latin-1"))
            if len(self._hosts) < _HOST_CACHE_LIMIT:
                self._hosts[raw] = key
            return key

    # -- listeners ------------------------------------------------------------

    async def listen_http(self, host: str, port: int, *, sock: socket.socket | None = None) -> None:
        """Bind (or adopt ``sock``) and serve plain HTTP; port 0 picks a free port."""
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        if sock is not None:
            server = await loop.create_server(self._factory, sock=sock, backlog=2048)
        else:
            server = await loop.create_server(
                self._factory, host, port, backlog=2048, reuse_address=True
            )
        self._servers.append(server)
        if self._ticker is None:
            self._ticker = loop.call_later(self._tick, self._sweep)
        self._serving = True
        self._want_listeners()

    async def listen_https(
        self, host: str, port: int, *, sock: socket.socket | None = None
    ) -> None:
        """Bind (or adopt ``sock``) and serve HTTPS with the SNI-chosen certificate."""
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        ctx = self.tls.listener_context()
        timeout = self.settings.client_header_timeout
        if sock is not None:
            server = await loop.create_server(
                self._factory, sock=sock, backlog=2048, ssl=ctx, ssl_handshake_timeout=timeout
            )
        else:
            server = await loop.create_server(
                self._factory,
                host,
                port,
                backlog=2048,
                reuse_address=True,
                ssl=ctx,
                ssl_handshake_timeout=timeout,
            )
        self._servers.append(server)
        self.https_port = self.https_port or server.sockets[0].getsockname()[1]
        if self._ticker is None:
            self._ticker = loop.call_later(self._tick, self._sweep)

    # -- per-port listeners (issue 13) ------------------------------------------------

    def _want_listeners(self) -> None:
        """Bring the per-port listeners in line with the snapshot, soon (not in apply:
        binding is I/O); one sync at a time, rerun when a snapshot came during one."""
        if not self._serving or self.draining:
            return
        if self._syncing is not None and not self._syncing.done():
            self._resync = True
            return
        self._syncing = asyncio.get_running_loop().create_task(self._sync_listeners())

    async def sync_listeners(self) -> None:
        """Wait until the per-port listeners match the applied snapshot (tests, start)."""
        self._want_listeners()
        while self._syncing is not None and not self._syncing.done():
            await asyncio.shield(self._syncing)

    async def _sync_listeners(self) -> None:
        while True:
            self._resync = False
            claimed = self.snapshot.routes.listeners()
            step = listeners.plan(self.port_servers, listeners.wanted(claimed, self.listen_policy))
            for key in step.close:
                # Stops accepting; the connections it accepted finish on their own.
                self.port_servers.pop(key).close()
            for key in step.open:
                if self.draining:
                    return
                await self._open_port(key)
            if not self._resync:
                return

    async def _open_port(self, key: ListenerKey) -> None:
        loop = asyncio.get_running_loop()
        try:
            ctx = self.tls.listener_context() if key.protocol == "https" else None
            sock = reuseport_socket(key.address, key.port, backlog=2048)
        except (OSError, ConfigError) as err:
            # Retried with the next snapshot; the other listeners are not affected.
            self.listener_errors[key] = str(err)
            log.warning("cannot open %s:%s (%s): %s", key.address, key.port, key.protocol, err)
            return
        self.listener_errors.pop(key, None)
        timeout = self.settings.client_header_timeout if ctx is not None else None
        server = await loop.create_server(
            self._port_factory(key), sock=sock, ssl=ctx, ssl_handshake_timeout=timeout
        )
        self.port_servers[key] = server

    def _port_factory(self, key: ListenerKey) -> Callable[[], asyncio.Protocol]:
        port, protocol = key.port, key.protocol
        if protocol in STREAM_PROTOCOLS:
            return lambda: StreamConnection(self, port, protocol)

        def factory() -> ClientConnection:
            return ClientConnection(self, dedicated=port)

        return factory

    @property
    def bound_ports(self) -> list[int]:
        return [s.getsockname()[1] for server in self._servers for s in server.sockets or ()]

    def _factory(self) -> ClientConnection:
        return ClientConnection(self)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = now = loop.time()
        for conn in [c for c in self.connections if c.state.expired(now)]:
            conn.on_timeout()
        self.plans.expire(now)
        for up in self.pool.trim():  # idle connections over the limit for a whole tick
            up.close()
        self._ticker = loop.call_later(self._tick, self._sweep)

    # -- shutdown ------------------------------------------------------------

    async def close(self, drain_timeout: float = 10.0) -> None:
        """Stop accepting, let in-flight exchanges finish up to ``drain_timeout``, close all."""
        self.draining = True
        for server in [*self._servers, *self.port_servers.values()]:
            server.close()
        self._servers.clear()
        self.port_servers.clear()
        loop = asyncio.get_running_loop()
        end = loop.time() + drain_timeout
        while (self.connections or self.streams) and loop.time() < end:
            for conn in list(self.connections):
                conn.close_if_idle()
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()
        for stream in list(self.streams):  # a relay has no request boundary to drain at
            stream.abort()
        for up in self.pool.drain():
            up.close()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
