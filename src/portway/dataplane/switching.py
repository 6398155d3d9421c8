"""WebSocket switching: accept a backend's 101, then splice the two sockets.

The upstream connection asks :func:`switching` whether a 101 completes the client's
own handshake (RFC 6455 §4.2.2: the accept key must match and Upgrade must say
websocket) before any byte of it reaches the client, then hands over with
:func:`splice`; from there on :class:`~portway.dataplane.tunnel.Tunnel` moves the bytes.
None of this runs for a request without a validated ``Sec-WebSocket-Key``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from portway.dataplane.recording import record
from portway.dataplane.tunnel import Tunnel
from portway.protocol import websocket as ws
from portway.protocol.response import ResponseHead

if TYPE_CHECKING:
    from portway.dataplane.responding import Responding
    from portway.dataplane.upstream import UpstreamConnection

TUNNEL: Final = 3  # the client connection's state once spliced (see client.py)


def switching(conn: Responding, head: ResponseHead) -> bool:
    """True (and the 101 queued for the client) when ``head`` completes the client's
    WebSocket handshake; False makes it a 502."""
    ex = conn.current
    if ex is None or ex.ws_key is None:
        return False
    accept = head.header_values(b"sec-websocket-accept")
    ok = ws.response_accepts(
        ex.ws_key, upgrade=head.upgrade, accept=accept[0] if len(accept) == 1 else None
    )
    if not ok:
        return False
    head.complete(101, head_request=False)
    encoded = head.encode(False, False, b"", b"http", ws.UPGRADE_LINES)
    conn.out.append(encoded)
    ex.status = 101
    ex.response_started = True
    ex.bytes_out = len(encoded)
    return True


def splice(conn: Responding, up: UpstreamConnection, rest: bytes) -> None:
    """Turn ``conn`` and ``up`` into a raw tunnel (after :func:`switching`)."""
    ex = conn.current
    assert ex is not None and ex.plan is not None and ex.backend is not None
    assert conn.transport is not None and up.transport is not None
    up.client = None
    up.usable = False  # never back to the pool: it speaks WebSocket now
    ex.upstream = None
    conn.flush()
    dp = conn.dp
    if dp.plans.outliers.watching:
        dp.plans.outliers.success((ex.plan.proxy.id, ex.backend.id))
    conn.state = TUNNEL
    conn.closing = True  # the HTTP side of this connection is over
    conn.hard_deadline = float("inf")
    conn.deadline = dp.now + ex.plan.websocket_idle
    conn.tunnel = Tunnel(conn, conn.transport, up.transport, ex.plan.websocket_idle)
    stash, conn._stash = conn._stash, b""
    conn.tunnel.open(rest, stash)


def tunnel_closed(conn: Responding, tunnel: Tunnel) -> None:
    """The tunnel ended: forget the connection, record the exchange with its byte counts."""
    conn._forget()
    ex, conn.current = conn.current, None
    if ex is not None:
        ex.received += tunnel.bytes_up
        ex.bytes_out += tunnel.bytes_down
        record(conn, ex)
