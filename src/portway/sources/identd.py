"""Ask a client host's identd who owns a connection (RFC 1413), with a deadline.

The parsing is ``protocol.ident``; this is the thin I/O around it. Every failure is an
``IdentError`` with a reason fit to send back to the client, so the caller never needs
to know about sockets.
"""

from __future__ import annotations

import asyncio

from portway.errors import PortwayError, RemoteProtocolError
from portway.protocol.ident import MAX_REPLY, parse_reply, query


class IdentError(PortwayError):
    """The caller's identity could not be established."""

    status = 403


async def lookup(
    client_host: str, client_port: int, server_port: int, *, ident_port: int, timeout: float
) -> str:
    """The user that owns ``client_host:client_port`` → our ``server_port``."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(client_host, ident_port)
            try:
                writer.write(query(client_port, server_port))
                data = b""
                while (reply := parse_reply(data, client_port, server_port)) is None:
                    chunk = await reader.read(MAX_REPLY + 2)
                    if not chunk:
                        raise IdentError("identd closed the connection without a reply")
                    data += chunk
            finally:
                writer.close()
    except TimeoutError:
        raise IdentError(f"identd on {client_host}:{ident_port} did not answer in time") from None
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise IdentError(f"cannot reach identd on {client_host}:{ident_port}: {reason}") from None
    except RemoteProtocolError as exc:
        raise IdentError(f"identd reply refused: {exc.message}") from None
    if reply.user is None:
        raise IdentError(f"identd could not identify the connection: {reply.error}")
    return reply.user
