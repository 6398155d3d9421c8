"""WebSocket switching: does a backend's 101 complete the client's own handshake?

The upstream connection asks (through the client connection) before any byte of the
101 reaches the client. RFC 6455 §4.2.2: the accept key must match the client's key and
Upgrade must say websocket. :func:`accept` answers with the 101 head to send, re-encoded
for the client, or None (the client connection then answers 502). The splice itself
(protocols swapped, bytes moved raw) is :class:`~portway.dataplane.tunnel.Tunnel`'s.
None of this runs for a request without a validated ``Sec-WebSocket-Key``.
"""

from __future__ import annotations

from portway.protocol import websocket as ws
from portway.protocol.response import ResponseHead


def accept(ws_key: bytes | None, head: ResponseHead) -> bytes | None:
    """The encoded 101 for the client when ``head`` completes the handshake made with
    ``ws_key``; None when it does not (or the request was no WebSocket handshake)."""
    if ws_key is None:
        return None
    accept_values = head.header_values(b"sec-websocket-accept")
    ok = ws.response_accepts(
        ws_key,
        upgrade=head.upgrade,
        accept=accept_values[0] if len(accept_values) == 1 else None,
    )
    if not ok:
        return None
    head.complete(101, head_request=False)
    return head.encode(False, False, b"", b"http", ws.UPGRADE_LINES)
