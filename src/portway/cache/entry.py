"""A stored response and the values read off heads to make and find one (no I/O).

Header blocks are kept as the parsers produce them: ``pieces`` is the flat list
``[name, b": ", value, b"\\r\\n", ...]`` of a ``ResponseHead`` (framing and hop-by-hop
fields already gone), and a stored head is that block joined once, with ``Age`` left
out: Portway writes its own ``Age`` on every hit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from portway.cache import policy
from portway.cache.policy import Freshness, Response
from portway.model import CacheKey

_AGE: Final = b"age"
# Kept out of a stored head: the computed Age replaces it, and Portway writes its own.
_NOT_STORED: Final = frozenset({b"age", b"cache-status"})
# Headers a 304 may not change in the stored response (RFC 9111 §3.2: framing).
_KEEP_ON_UPDATE: Final = frozenset({b"content-length", b"content-encoding", b"content-range"})
# A request's ``header(name) -> value | None`` (``RequestHead.header``).
HeaderLookup = Callable[[bytes], bytes | None]
OVERHEAD: Final = 256  # bytes counted per entry besides its head and body (the objects)


def header_map(pieces: Sequence[bytes]) -> dict[bytes, list[bytes]]:
    """Lower-case name → its values, in order."""
    found: dict[bytes, list[bytes]] = {}
    for i in range(0, len(pieces) - 3, 4):
        found.setdefault(pieces[i].lower(), []).append(pieces[i + 2])
    return found


def response_facts(status: int, fields: dict[bytes, list[bytes]]) -> Response:
    def one(name: bytes) -> bytes | None:
        values = fields.get(name)
        return values[0].strip() if values else None

    age = policy.delta_seconds((one(b"age") or b"").decode("latin-1"))
    vary = tuple(
        v.strip().lower()
        for value in fields.get(b"vary", ())
        for v in value.decode("latin-1").split(",")
        if v.strip()
    )
    return Response(
        status=status,
        directives=policy.parse_cache_control(fields.get(b"cache-control", ())),
        date=policy.http_date(one(b"date")),
        expires=one(b"expires"),
        last_modified=policy.http_date(one(b"last-modified")),
        age=age or 0,
        etag=one(b"etag"),
        vary=vary,
        set_cookie=b"set-cookie" in fields,
    )


def surrogate_keys(fields: dict[bytes, list[bytes]]) -> frozenset[str]:
    """The origin's purge tags: ``Surrogate-Key`` (space-separated, Fastly) and
    ``Cache-Tag`` (comma-separated, Cloudflare)."""
    tags: set[str] = set()
    for value in fields.get(b"surrogate-key", ()):
        tags.update(value.decode("latin-1").split())
    for value in fields.get(b"cache-tag", ()):
        tags.update(t.strip() for t in value.decode("latin-1").split(",") if t.strip())
    return frozenset(tags)


def stored_head(pieces: Sequence[bytes]) -> bytes:
    kept: list[bytes] = []
    for i in range(0, len(pieces) - 3, 4):
        if pieces[i].lower() not in _NOT_STORED:
            kept.extend(pieces[i : i + 4])
    return b"".join(kept)


def _lines(block: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    for line in block.split(b"\r\n"):
        name, sep, value = line.partition(b": ")
        if sep:
            out.append((name, value))
    return out


def merged_head(old: bytes, update: Sequence[bytes]) -> bytes:
    """RFC 9111 §3.2 / §4.3.4: the stored head with the 304's fields replacing those of
    the same name (framing fields excepted)."""
    fresh = [
        (update[i], update[i + 2])
        for i in range(0, len(update) - 3, 4)
        if update[i].lower() not in _NOT_STORED and update[i].lower() not in _KEEP_ON_UPDATE
    ]
    replaced = {name.lower() for name, _ in fresh}
    kept = [(n, v) for n, v in _lines(old) if n.lower() not in replaced]
    return b"".join(n + b": " + v + b"\r\n" for n, v in kept + fresh)


def request_key(host: bytes, url: bytes, key: CacheKey, header: HeaderLookup) -> bytes:
    """The primary cache key of a request: host, target (its query only when the
    tenant's key says so) and the values of the key's headers."""
    target = url if key.query else url.partition(b"?")[0]
    parts = [host.lower(), target]
    for name in key.headers:
        parts.append(header(name.lower().encode("latin-1")) or b"")
    return b"\0".join(parts)


def vary_values(names: tuple[str, ...], header: HeaderLookup) -> tuple[bytes, ...]:
    """The request's values of the fields a response varies on, normalised (§4.1:
    whitespace around commas does not make a difference)."""
    out = []
    for name in names:
        value = header(name.encode("latin-1"))
        out.append(b"" if value is None else b",".join(p.strip() for p in value.split(b",")))
    return tuple(out)


class Entry:
    """A complete stored response. Entries are replaced, never changed in place, so a
    hit being written out holds a consistent one."""

    __slots__ = (
        "body",
        "etag",
        "fresh",
        "head",
        "host",
        "key",
        "last_modified",
        "reason",
        "size",
        "status",
        "tags",
        "target",
        "vary",
        "vary_values",
    )

    def __init__(
        self,
        *,
        key: bytes,
        host: bytes,
        target: bytes,
        status: int,
        reason: bytes,
        head: bytes,
        body: tuple[bytes, ...],
        body_size: int,
        fresh: Freshness,
        facts: Response,
        tags: frozenset[str],
        vary_values: tuple[bytes, ...],
    ) -> None:
        self.key = key
        self.host = host.lower()
        self.target = target
        self.status = status
        self.reason = reason
        self.head = head
        self.body = body
        self.size = OVERHEAD + len(head) + len(key) + body_size
        self.fresh = fresh
        self.etag = facts.etag
        self.last_modified = _raw(head, b"last-modified")
        self.tags = tags
        self.vary = facts.vary
        self.vary_values = vary_values

    def conditional_lines(self) -> bytes:
        """The validators to revalidate with (§4.3.1), or b"" when it has none."""
        lines = b""
        if self.etag is not None:
            lines += b"If-None-Match: " + self.etag + b"\r\n"
        if self.last_modified is not None:
            lines += b"If-Modified-Since: " + self.last_modified + b"\r\n"
        return lines

    @property
    def body_size(self) -> int:
        return sum(len(b) for b in self.body)


def _raw(head: bytes, name: bytes) -> bytes | None:
    for n, v in _lines(head):
        if n.lower() == name:
            return v
    return None
