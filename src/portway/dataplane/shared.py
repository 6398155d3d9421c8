"""The plug points between the data plane and its connections.

:class:`Shared` is what a connection uses of the data plane it belongs to (settings,
clock, snapshot, plans, pool, metrics); :class:`Tracked` is what the data plane's sweep
and drain use of a connection. :class:`Relays` and :class:`Relayed` are the same pair
for the relayed connections of tcp and tls-passthrough ports (``stream``).
``DataPlane``, ``ClientConnection`` and ``StreamConnection`` implement them
structurally, so ``client`` and ``stream`` never import ``server`` and ``server`` never
reaches into a connection's fields: imports point one way (``server`` → ``client``,
``stream`` → ``shared``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import ssl

    from portway.dataplane.conn_state import ConnState
    from portway.dataplane.plans import Plan, Plans
    from portway.dataplane.pool import UpstreamPool
    from portway.dataplane.settings import DataPlaneSettings
    from portway.dataplane.upstream import UpstreamConnection
    from portway.model import Proxy
    from portway.model.backend_policy import BackendPolicy
    from portway.observability.access_log import AccessLog
    from portway.observability.metrics import RequestMetrics
    from portway.protocol.forwarded import ForwardedContexts
    from portway.router import Snapshot


class Tracked(Protocol):
    """A client connection as the sweep and the drain see it."""

    @property
    def state(self) -> ConnState: ...

    def on_timeout(self) -> None:
        """Called by the sweep once ``state.expired(now)``."""

    def close_if_idle(self) -> None:
        """Close unless a request is in flight or half-received (the drain)."""

    def abort(self) -> None:
        """Drop the connection now (end of the drain)."""


class Shared(Protocol):
    """What every client connection of one data plane shares."""

    settings: DataPlaneSettings
    now: float  # the loop's time at the last sweep: coarse, and free to read
    snapshot: Snapshot
    plans: Plans
    pool: UpstreamPool[UpstreamConnection]
    metrics: RequestMetrics
    access_log: AccessLog | None
    backend_policy: BackendPolicy  # checked on every address a connection dials
    upstream_tls: ssl.SSLContext  # the client context of every TLS backend (tls/upstream.py)
    forwarded: ForwardedContexts
    draining: bool
    https_port: int

    def host_key(self, raw: bytes) -> str | None:
        """Host header → route-table key (None: not a valid host)."""

    def admit(self, conn: Tracked, port: int) -> bool:
        """Count ``conn`` on listener ``port``; False when the listener is full."""

    def forget(self, conn: Tracked, port: int) -> None:
        """Stop counting ``conn`` (idempotent; refused connections were never counted)."""


class Relayed(Protocol):
    """A relayed connection as its data plane counts it."""

    @property
    def port(self) -> int:
        """The listener it came in on."""

    @property
    def plan(self) -> Plan | None:
        """Its proxy's plan, once routed (None before)."""

    def abort(self) -> None:
        """Drop both sides now (the end of a drain)."""


class Relays(Shared, Protocol):
    """What a relayed connection uses of its data plane, beyond ``Shared``."""

    def admit_stream(self, conn: Relayed) -> bool:
        """Count ``conn`` on its listener; False when the listener is full."""

    def admit_to_proxy(self, conn: Relayed, proxy: Proxy) -> bool:
        """Count ``conn`` on ``proxy``; False at its ``stream.max_connections``."""

    def forget_stream(self, conn: Relayed) -> None:
        """Stop counting ``conn`` (idempotent; refused connections were never counted)."""
