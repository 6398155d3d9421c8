"""The identification protocol (RFC 1413), client side, sans-IO.

The registration listener learns which Unix user opened a connection by asking the
client host's identd: it connects back to port 113 and sends
``<port on the client>,<port on the server>\\r\\n``. The answer is one line::

    <ports> : USERID : <opsys>[,<charset>] : <user-id>
    <ports> : ERROR : <reason>

Daemons differ in spacing (Debian's oidentd writes ``56674,8282:USERID:UNIX:tools.a``),
so whitespace around the separators is optional. The port pair in the answer must be the
one asked about: a reply about another connection is an error, not an identity. The
user-id is everything after the third colon (it may itself contain colons, RFC 1413
§6), minus surrounding blanks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from portway.errors import RemoteProtocolError

# RFC 1413 §6: replies are at most 1000 characters; anything longer is not identd.
MAX_REPLY: Final = 1000


@dataclass(frozen=True, slots=True)
class IdentReply:
    """A parsed reply: ``user`` when the daemon named one, else ``error``."""

    user: str | None
    error: str | None = None


def query(client_port: int, server_port: int) -> bytes:
    """The line sent to the client host's identd."""
    return b"%d,%d\r\n" % (client_port, server_port)


def parse_reply(data: bytes, client_port: int, server_port: int) -> IdentReply | None:
    """The reply in ``data``, None while its line is incomplete, or RemoteProtocolError."""
    end = data.find(b"\n")
    if end < 0:
        if len(data) > MAX_REPLY:
            raise RemoteProtocolError("identd reply longer than 1000 bytes")
        return None
    line = data[:end].rstrip(b"\r")
    if len(line) > MAX_REPLY or b"\0" in line:
        raise RemoteProtocolError("malformed identd reply")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError("identd reply is not ASCII") from None
    ports, kind, rest = _split(text, 2)
    if _ports(ports) != (client_port, server_port):
        raise RemoteProtocolError(f"identd answered for other ports: {ports.strip()!r}")
    kind = kind.strip().upper()
    if kind == "ERROR":
        return IdentReply(user=None, error=rest.strip() or "UNKNOWN-ERROR")
    if kind != "USERID":
        raise RemoteProtocolError(f"unknown identd reply type {kind[:32]!r}")
    _opsys, user = _split(rest, 1)
    user = user.strip()
    if not user:
        raise RemoteProtocolError("identd reply names no user")
    return IdentReply(user=user)


def _split(text: str, colons: int) -> list[str]:
    parts = text.split(":", colons)
    if len(parts) != colons + 1:
        raise RemoteProtocolError("malformed identd reply")
    return parts


def _ports(text: str) -> tuple[int, int] | None:
    left, comma, right = text.partition(",")
    left, right = left.strip(), right.strip()
    if not comma or not left.isdigit() or not right.isdigit():
        return None
    return int(left), int(right)
