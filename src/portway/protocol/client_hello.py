"""The server name of a TLS ClientHello, read without terminating TLS (sans-IO).

A ``tls-passthrough`` listener routes a connection by the name the client asks for
(RFC 6066 §3, server_name) and relays the bytes, ClientHello included, to a backend
that does the handshake itself. ``SniReader`` is fed the client's first bytes and says
``NEED_MORE``, the name (lower-case, one trailing dot dropped), ``NO_NAME`` (a valid
hello without server_name) or raises ``RemoteProtocolError`` for anything that is not a
well-formed ClientHello; the caller then closes.

Layout (RFC 8446 §4.1.2, §5.1; RFC 5246 §7.4.1.2): TLS records of type 22 (handshake),
each ``type(1) version(2) length(2)``, whose fragments concatenate into one handshake
message ``type(1)=1 length(3)`` holding ``version(2) random(32) session_id<0..32>
cipher_suites<2..2^16-2> compression_methods<1..2^8-1> extensions<0..2^16-1>``; the
server_name extension (type 0) holds ``server_name_list<1..2^16-1>`` of ``name_type(1)
HostName<1..2^16-1>``, name_type 0 being host_name.
"""

from __future__ import annotations

from typing import Final

from portway.errors import RemoteProtocolError

NEED_MORE: Final = ""  # feed more bytes
NO_NAME: Final = "\x00"  # a hello without server_name: routed to nobody
MAX_HELLO = 16384  # a larger ClientHello is refused (no real client sends one this big)
_RECORD = 5
_HANDSHAKE = 22
_CLIENT_HELLO = 1
_SERVER_NAME = 0
_HOST_NAME = 0


def _bad(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"not a TLS ClientHello: {why}")


class SniReader:
    """Accumulates the client's first bytes until the hello is whole."""

    __slots__ = ("_hello", "_raw", "_used")

    def __init__(self) -> None:
        self._raw = b""  # everything received, relayed as is once routed
        self._used = 0  # bytes of _raw parsed into records
        self._hello = b""  # the handshake fragments so far

    @property
    def received(self) -> bytes:
        return self._raw

    def feed(self, data: bytes) -> str:
        self._raw += data
        while len(self._raw) - self._used >= _RECORD:
            kind, major, length = (
                self._raw[self._used],
                self._raw[self._used + 1],
                _u16(self._raw, self._used + 3),
            )
            if kind != _HANDSHAKE or major != 3:
                raise _bad("the first record is not a handshake")
            if length == 0 or length > MAX_HELLO:
                raise _bad("bad record length")
            end = self._used + _RECORD + length
            if len(self._raw) < end:
                break
            self._hello += self._raw[self._used + _RECORD : end]
            self._used = end
            if len(self._hello) > MAX_HELLO + 4:
                raise _bad("too long")
            if len(self._hello) >= 4:
                size = int.from_bytes(self._hello[1:4], "big")
                if self._hello[0] != _CLIENT_HELLO or size > MAX_HELLO:
                    raise _bad("the first handshake message is not a ClientHello")
                if len(self._hello) >= 4 + size:
                    return server_name(self._hello[4 : 4 + size])
        if len(self._raw) > MAX_HELLO + 2 * _RECORD + 4:
            raise _bad("too long")
        return NEED_MORE


def _u16(data: bytes, at: int) -> int:
    return (data[at] << 8) | data[at + 1]


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise _bad("truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def vector(self, size_bytes: int) -> bytes:
        return self.take(int.from_bytes(self.take(size_bytes), "big"))

    @property
    def done(self) -> bool:
        return self.pos == len(self.data)


def server_name(body: bytes) -> str:
    """The host_name of a ClientHello body (after its 4-byte header), or NO_NAME."""
    hello = _Cursor(body)
    hello.take(2 + 32)  # legacy_version, random
    if len(hello.vector(1)) > 32:
        raise _bad("session id longer than 32 bytes")
    suites = hello.vector(2)
    if not suites or len(suites) % 2:
        raise _bad("bad cipher suites")
    if not hello.vector(1):
        raise _bad("no compression method")
    if hello.done:
        return NO_NAME  # no extensions at all (TLS 1.2 allows it)
    extensions = _Cursor(hello.vector(2))
    if not hello.done:
        raise _bad("bytes after the extensions")
    found = NO_NAME
    seen: set[int] = set()
    while not extensions.done:
        kind = int.from_bytes(extensions.take(2), "big")
        data = extensions.vector(2)
        if kind in seen:
            raise _bad("an extension appears twice")  # RFC 8446 §4.2
        seen.add(kind)
        if kind == _SERVER_NAME:
            found = _host_name(data)
    return found


def _host_name(data: bytes) -> str:
    names = _Cursor(_Cursor(data).vector(2))
    host = NO_NAME
    while not names.done:
        kind = names.take(1)[0]
        name = names.vector(2)
        if kind == _HOST_NAME:
            if host != NO_NAME:
                raise _bad("two host names")  # RFC 6066 §3: at most one of each type
            host = _ascii_name(name)
    return host


def _ascii_name(raw: bytes) -> str:
    """RFC 6066: a HostName is ASCII, without a trailing dot; the router's key is lower
    case. Anything else (a NUL, a space, non-ASCII) is refused, never routed."""
    if not raw or len(raw) > 255:
        raise _bad("bad host name length")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise _bad("host name is not ASCII") from None
    name = text.lower().removesuffix(".")
    if not name or not all(c.isalnum() or c in "-._" for c in name):
        raise _bad("host name has characters no hostname has")
    return name
