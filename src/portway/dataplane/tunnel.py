"""A spliced connection pair: raw bytes both ways after a validated WebSocket 101.

Both transports get a :class:`TunnelEnd` as their protocol (``set_protocol``), so once
the tunnel is open no HTTP code runs per read: a read is one ``write`` to the other side
and a restart of the idle timer. Backpressure is symmetric: when one side's write
buffer passes its high-water mark, the other side stops being read until it drains.

The client connection stays in the data plane's connection set while the tunnel lives
(for the sweep's idle timeout, the drain and ``open_connections``): the tunnel restarts
the connection's own timer (its :class:`~portway.dataplane.conn_state.ConnState`, in
phase TUNNEL) and reports its end through ``on_closed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from portway.dataplane.conn_state import ConnState


class Tunnel:
    __slots__ = (
        "bytes_down",
        "bytes_up",
        "client",
        "closed",
        "eofs",
        "on_closed",
        "state",
        "upstream",
    )

    def __init__(
        self,
        state: ConnState,
        client: asyncio.Transport,
        upstream: asyncio.Transport,
        on_closed: Callable[[Tunnel], None],
    ) -> None:
        self.state = state  # the client connection's: its deadline is the tunnel's idle timer
        self.client = client
        self.upstream = upstream
        self.on_closed = on_closed
        self.bytes_up = 0  # client → backend
        self.bytes_down = 0  # backend → client
        self.eofs = 0
        self.closed = False

    def open(self, to_client: bytes, to_upstream: bytes) -> None:
        """Swap both protocols, send what was read past the heads, start reading."""
        down = TunnelEnd(self, self.client, upstream_side=True)
        up = TunnelEnd(self, self.upstream, upstream_side=False)
        self.upstream.set_protocol(down)
        self.client.set_protocol(up)
        if to_client:
            self.bytes_down += len(to_client)
            self.client.write(to_client)
        if to_upstream:
            self.bytes_up += len(to_upstream)
            self.upstream.write(to_upstream)
        self.client.resume_reading()
        self.upstream.resume_reading()

    def close(self) -> None:
        """Close both sides; close() sends what is buffered first (a close frame, say)."""
        self.client.close()
        self.upstream.close()

    def ended(self) -> None:
        if not self.closed:
            self.closed = True
            self.close()
            self.on_closed(self)


class TunnelEnd(asyncio.Protocol):
    """One side's protocol: what it reads goes to ``other``."""

    __slots__ = ("other", "tunnel", "upstream_side")

    def __init__(self, tunnel: Tunnel, other: asyncio.Transport, *, upstream_side: bool) -> None:
        self.tunnel = tunnel
        self.other = other
        self.upstream_side = upstream_side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass  # never called: the transport already existed when the protocol was set

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if self.upstream_side:
            tunnel.bytes_down += len(data)
        else:
            tunnel.bytes_up += len(data)
        self.other.write(data)
        tunnel.state.touch()

    def eof_received(self) -> bool:
        # Pass the half-close on; the tunnel ends when both directions are done.
        tunnel = self.tunnel
        tunnel.eofs += 1
        if tunnel.eofs >= 2 or not self.other.can_write_eof():
            tunnel.ended()
            return False
        self.other.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.ended()

    def pause_writing(self) -> None:
        # This end's own transport is full, and only ``other``'s reads feed it.
        self.other.pause_reading()

    def resume_writing(self) -> None:
        self.other.resume_reading()
