"""The Toolforge registration protocol (TCP 8282), sans-IO: bytes in, a request or a
refusal out (compat.md §2).

One connection carries one request and gets exactly one reply, ``ok`` or ``fail``, with
no newline; then the server closes. Every field ends with ``\\n``::

    register\\n<route>\\n<destination>\\n            add a route for the caller's tool
    registerCanonical\\n<route>\\n<destination>\\n   the same, and mark the tool canonical
    unregister\\n<route>\\n                         remove the route (both marks)

A client on a cloud without identd proves who it is with a token line first:
``token <secret>\\n`` followed by one of the requests above. The secret is a Portway
token of the tool's project (member role).

Rules, in the order they are applied to the bytes received so far:

1. A line (without its ``\\n``) longer than ``MAX_LINE`` bytes is refused, even before
   its end arrives, so a client cannot make the server buffer without bound.
2. The first line must be one of the three commands; anything else is refused as soon
   as that line is complete.
3. A request is complete when its last field's ``\\n`` has arrived; bytes after it are
   refused (one request per connection).
4. Fields are ASCII without control characters; a ``\\r`` before the ``\\n`` is dropped
   (telnet-style clients).
5. ``<destination>`` is ``http://host:port``, ``https://host:port`` or, as the oldest
   clients send it, a bare ``ip:port`` meaning ``http://``. Nothing may follow the
   port: the backend gets the client's path, never one from the registration.

What ``<route>`` may contain is decided by whoever compiles it (``router.patterns``);
here it is only bounded and checked for control characters.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from portway.errors import RemoteProtocolError

MAX_LINE: Final = 4096
REGISTER: Final = "register"
REGISTER_CANONICAL: Final = "registerCanonical"
UNREGISTER: Final = "unregister"
# Fields after the command line, per command.
_FIELDS: Final = {REGISTER: 2, REGISTER_CANONICAL: 2, UNREGISTER: 1}
_TOKEN_PREFIX: Final = "token "
OK: Final = b"ok"
FAIL: Final = b"fail"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a tool's route sends traffic; ``text`` is exactly what the tool sent."""

    scheme: str
    host: str
    port: int
    text: str


@dataclass(frozen=True, slots=True)
class Registration:
    command: str
    route: str
    destination: Destination | None  # None for unregister
    token: str | None = None  # the secret of a leading ``token`` line

    @property
    def canonical(self) -> bool:
        return self.command == REGISTER_CANONICAL


def parse(received: bytes) -> Registration | None:
    """The request in ``received``, None while it is incomplete, or RemoteProtocolError."""
    lines = received.split(b"\n")
    complete, partial = lines[:-1], lines[-1]
    if len(partial) > MAX_LINE or any(len(line) > MAX_LINE + 1 for line in complete):
        raise RemoteProtocolError(f"line longer than {MAX_LINE} bytes")
    if not complete:
        return None
    fields = [_field(line) for line in complete]
    token = None
    if fields[0].startswith(_TOKEN_PREFIX):
        token = fields[0][len(_TOKEN_PREFIX) :]
        if not token:
            raise RemoteProtocolError("empty token")
        fields = fields[1:]
        if not fields:
            return None
    command = fields[0]
    wanted = _FIELDS.get(command)
    if wanted is None:
        raise RemoteProtocolError(f"unknown command {command[:64]!r}")
    if len(fields) < wanted + 1:
        return None
    if len(fields) > wanted + 1 or partial:
        raise RemoteProtocolError("bytes after the request (one request per connection)")
    route = fields[1]
    if not route:
        raise RemoteProtocolError("empty route")
    destination = parse_destination(fields[2]) if wanted == 2 else None
    return Registration(command=command, route=route, destination=destination, token=token)


def _field(line: bytes) -> str:
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.isascii() or any(b < 0x20 or b == 0x7F for b in line):
        raise RemoteProtocolError("fields must be printable ASCII")
    return line.decode("ascii")


def parse_destination(text: str) -> Destination:
    """``http(s)://host:port`` or bare ``ip:port`` → Destination, or RemoteProtocolError."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
        bare = True
    else:
        bare = False
        if scheme not in ("http", "https"):
            raise RemoteProtocolError(f"destination scheme must be http or https: {text!r}")
    if rest.startswith("["):
        host, close, port = rest[1:].partition("]:")
        if not close:
            raise RemoteProtocolError(f"destination must end in :port: {text!r}")
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise RemoteProtocolError(f"destination must end in :port: {text!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535 or len(port) > 5:
        raise RemoteProtocolError(f"destination port must be 1-65535: {text!r}")
    if not host or any(c in host for c in "/?#@ "):
        raise RemoteProtocolError(f"destination must be scheme://host:port: {text!r}")
    if bare:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise RemoteProtocolError(f"a bare destination must be ip:port: {text!r}") from None
    return Destination(scheme=scheme, host=host.lower(), port=int(port), text=text)
