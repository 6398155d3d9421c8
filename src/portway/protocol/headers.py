"""Header classification shared by the request and response sides.

Every header name a peer sends is mapped to a small integer *kind* once; the kind says
what the proxy does with it (forward, strip, use for framing, replace). Names arrive with
the peer's own casing, so a bounded cache keyed by the raw bytes avoids a ``lower()`` per
header on the hot path (clients send the same few spellings over and over).
"""

from __future__ import annotations

from typing import Final

OTHER: Final = 0  # end-to-end: forwarded unless Connection names it
HOST: Final = 1
CONTENT_LENGTH: Final = 2
TRANSFER_ENCODING: Final = 3
CONNECTION: Final = 4
HOP_BY_HOP: Final = 5  # always stripped (Keep-Alive, TE, Trailer, Proxy-*, httpoxy Proxy)
X_FORWARDED_FOR: Final = 6
X_FORWARDED_PROTO: Final = 7
X_FORWARDED_HOST: Final = 8
X_FORWARDED_PORT: Final = 9
FORWARDED: Final = 10
SMUGGLING: Final = 11  # underscore spelling of a framing header: refused outright
SPOOFING: Final = 12  # underscore spelling of a forwarded header: silently dropped
# Upgrade is never forwarded as a plain header: a request's is kept for the WebSocket
# handshake, and a backend's 101 is checked against the response's.
UPGRADE: Final = 13
LOCATION: Final = 14
EXPECT: Final = 15
ORIGINAL_URI: Final = 16  # X-Original-URI: set by Portway for Toolforge tools, else dropped
REAL_IP: Final = 17  # X-Real-IP: a client address Portway never sets; dropped on requests

_KNOWN: Final[dict[bytes, int]] = {
    b"host": HOST,
    b"content-length": CONTENT_LENGTH,
    b"transfer-encoding": TRANSFER_ENCODING,
    b"connection": CONNECTION,
    b"keep-alive": HOP_BY_HOP,
    b"proxy-connection": HOP_BY_HOP,
    b"te": HOP_BY_HOP,
    b"trailer": HOP_BY_HOP,
    b"proxy-authorization": HOP_BY_HOP,
    b"proxy-authenticate": HOP_BY_HOP,
    # httpoxy: CGI-style backends turn "Proxy:" into HTTP_PROXY and use it as their proxy.
    b"proxy": HOP_BY_HOP,
    b"x-forwarded-for": X_FORWARDED_FOR,
    b"x-forwarded-proto": X_FORWARDED_PROTO,
    b"x-forwarded-host": X_FORWARDED_HOST,
    b"x-forwarded-port": X_FORWARDED_PORT,
    b"forwarded": FORWARDED,
    # Another spelling of the client's address (nginx's realip convention): Portway sets
    # none, so a client's own would pass for a proxy's; it never reaches a backend.
    b"x-real-ip": REAL_IP,
    b"upgrade": UPGRADE,
    b"location": LOCATION,
    b"expect": EXPECT,
    # Set by Portway for Toolforge tools (the URI as the client sent it): a client's
    # own would pass for ours, so it never reaches any backend.
    b"x-original-uri": ORIGINAL_URI,
}
# Kinds a Connection header may never remove: Portway sets or validates them itself.
PROTECTED: Final = frozenset(k for k in set(_KNOWN.values()) if k != OTHER)

_CACHE_LIMIT: Final = 4096
_cache: dict[bytes, int] = {}
cache_lookup = _cache.get  # for hot loops that inline classify()


def _classify_uncached(name: bytes) -> int:
    lower = name.lower()
    kind = _KNOWN.get(lower)
    if kind is not None:
        return kind
    if b"_" in lower:
        # Some stacks (CGI, PHP, old nginx configs) fold "_" into "-": a Content_Length
        # would become a second, hidden framing header and a X_Forwarded_For a spoof.
        folded = _KNOWN.get(lower.replace(b"_", b"-"))
        if folded in (CONTENT_LENGTH, TRANSFER_ENCODING, HOST):
            return SMUGGLING
        if folded is not None:
            return SPOOFING
    return OTHER


def classify(name: bytes) -> int:
    """The kind of header ``name`` (any casing)."""
    kind = _cache.get(name)
    if kind is None:
        kind = _classify_uncached(name)
        if len(_cache) < _CACHE_LIMIT:  # bounded: a hostile client cannot grow it
            _cache[name] = kind
    return kind


# Connection options that name no other header; the parser already acted on them.
_PLAIN_OPTIONS: Final = frozenset({b"keep-alive", b"close", b"Keep-Alive", b"Close"})


def connection_tokens(value: bytes, into: set[bytes] | None = None) -> set[bytes] | None:
    """Lower-cased header names a Connection value lists, beyond keep-alive and close.

    Returns None when there are none, which is nearly always: then no header list needs
    filtering at all.
    """
    if value in _PLAIN_OPTIONS:  # fast path for the usual "keep-alive" / "close"
        return into
    for part in value.split(b","):
        token = part.strip().lower()
        if token and token not in _PLAIN_OPTIONS:
            if into is None:
                into = set()
            into.add(token)
    return into


def drop_named(pieces: list[bytes], named: set[bytes]) -> list[bytes]:
    """Remove forwarded headers that Connection named from a flat piece list.

    ``pieces`` holds groups of four: name, b": ", value, b"\\r\\n". Only plain end-to-end
    headers are in it, so Portway's own headers cannot be removed this way.
    """
    kept: list[bytes] = []
    for i in range(0, len(pieces), 4):
        if pieces[i].lower() not in named:
            kept.extend(pieces[i : i + 4])
    return kept
