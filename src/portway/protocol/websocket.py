"""The WebSocket opening handshake (RFC 6455 §4), as pure checks on header values.

The proxy tunnels only what both ends agreed on: a client request that is a well-formed
WebSocket handshake, and a backend ``101`` that accepts exactly that request. Anything
else is served as ordinary HTTP (or refused with 400), so a bare ``Upgrade`` header can
never turn a connection into an unframed pipe (h2c smuggling, request-smuggling through
a half-open tunnel).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Final

from portway.errors import RemoteProtocolError

GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_VERSION: Final = b"13"
# What the proxy sends upstream in place of the client's Upgrade/Connection headers.
UPGRADE_LINES: Final = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"


def wants_websocket(upgrade: bytes) -> bool:
    """Whether an ``Upgrade`` value asks for WebSocket (other protocols are stripped)."""
    return any(p.strip().lower().split(b"/")[0] == b"websocket" for p in upgrade.split(b","))


def check_request(
    *,
    method: bytes,
    http10: bool,
    connection_upgrade: bool,
    key: bytes | None,
    version: bytes | None,
) -> bytes:
    """Validate a client handshake that asked for ``Upgrade: websocket``; return its key.

    Raises RemoteProtocolError (400) when the request is not a valid handshake.
    """
    if method != b"GET" or http10:
        raise RemoteProtocolError("WebSocket handshake needs GET over HTTP/1.1", status=400)
    if not connection_upgrade:
        raise RemoteProtocolError("WebSocket handshake without Connection: upgrade", status=400)
    if version is None or version.strip() != _VERSION:
        raise RemoteProtocolError("Sec-WebSocket-Version must be 13", status=400)
    if key is None:
        raise RemoteProtocolError("Sec-WebSocket-Key is missing", status=400)
    key = key.strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise RemoteProtocolError("Sec-WebSocket-Key is not 16 bytes in base64", status=400)
    return key


def accept_for(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def response_accepts(key: bytes, *, upgrade: bytes | None, accept: bytes | None) -> bool:
    """Whether a backend's 101 completes the handshake the client started with ``key``."""
    if upgrade is None or not wants_websocket(upgrade) or accept is None:
        return False
    return accept.strip() == accept_for(key)
