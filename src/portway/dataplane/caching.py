"""The HTTP cache in the exchange path: what a request to a caching proxy leads to, and
what its response does to the cache. Decisions only; the client connection writes.

A plan has a :class:`PlanCache` only when its proxy has ``cache.enabled``, decided once
per plan, so a proxy without a cache pays one ``is None`` test per request. A request to
a caching proxy gets a :class:`Flow`, which :func:`lookup` fills in: an entry to serve
(HIT, SWR), one to revalidate, a fill to wait on (collapsed forwarding) or a fill of its
own to stream the response into. The exchange's one end (``recording.record``) calls
:meth:`Flow.end`, which commits a complete fill or abandons any other.

Clock: freshness compares with the origin's ``Date``, so it runs on wall time
(``time.time``), injected as ``now`` everywhere below.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Final

from portway.cache import policy
from portway.cache.entry import (
    Entry,
    header_map,
    merged_head,
    request_key,
    response_facts,
    stored_head,
    surrogate_keys,
    vary_values,
)
from portway.cache.store import Fill, ProxyCache, Purge, Waiter, host_only
from portway.model import purge_key
from portway.protocol.response import status_line

if TYPE_CHECKING:
    from portway.model import CacheSettings, PurgeSettings
    from portway.protocol.request import RequestHead
    from portway.protocol.response import ResponseHead

PURGE_KEY_HEADER: Final = b"x-purge-key"
SWR_WORD: Final = b"hit; detail=stale-while-revalidate"
# Methods that make a cache drop what it holds for the target (RFC 9111 §4.4).
_UNSAFE: Final = frozenset({b"POST", b"PUT", b"DELETE", b"PATCH"})
_CONDITIONALS: Final = (b"if-none-match", b"if-modified-since", b"if-match", b"if-range")
# The request fields the rules read, gathered in one pass over the head (Flow.fields).
_READ: Final = frozenset({b"range", b"cache-control", b"pragma", b"authorization", *_CONDITIONALS})


def _fields(head: RequestHead) -> dict[bytes, bytes]:
    """The first value of each field of ``_READ`` the request has (one pass, not one
    search per field: a hit reads six of them)."""
    found: dict[bytes, bytes] = {}
    pieces = head.pieces
    for i in range(0, len(pieces), 4):
        name = pieces[i].lower()
        if name in _READ and name not in found:
            found[name] = pieces[i + 2].rstrip(b" \t")
    return found


# What lookup() decides (Flow.action).
FORWARD: Final = 0  # to the backend (with a fill, validators, or neither)
SERVE: Final = 1  # flow.entry answers now (flow.word says how)
WAIT: Final = 2  # flow.waiting: another request is fetching this key
PURGE: Final = 3  # the PURGE method (flow.allowed says whether it may)


class PlanCache:
    """A caching proxy's cache and rules, as one plan sees them."""

    __slots__ = ("allow_from", "default_ttl", "key", "purge_key", "store")

    def __init__(self, settings: CacheSettings, purge: PurgeSettings, store: ProxyCache) -> None:
        self.store = store
        self.key = settings.key
        self.default_ttl = settings.default_ttl
        self.allow_from = tuple(ipaddress.ip_network(c, strict=False) for c in purge.allow_from)
        # (salt, digest): the snapshot carries only the key's hash, parsed once per plan.
        # A malformed one (validation refuses it) opens nothing.
        self.purge_key: tuple[bytes, bytes] | None = None
        if purge.key_hash is not None and purge_key.is_key_hash(purge.key_hash):
            self.purge_key = purge_key.parsed(purge.key_hash)

    def may_purge(self, peer: str, head: RequestHead) -> bool:
        """The PURGE rule: the client's address in ``allow_from``, or the right key
        (one salted SHA-256 and a constant-time comparison: model/purge_key.py says
        why no slow KDF runs here, on the event loop)."""
        if self.purge_key is not None:
            given = head.header(PURGE_KEY_HEADER)
            if given is not None and purge_key.matches(*self.purge_key, given):
                return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.allow_from)


class Flow:
    """One exchange's dealings with the cache."""

    __slots__ = (
        "action",
        "cache",
        "complete",
        "conditional",
        "entry",
        "facts",
        "fields",
        "fill",
        "key",
        "request",
        "requested_at",
        "stored",
        "waited",
        "word",
    )

    def __init__(self, cache: PlanCache) -> None:
        self.cache = cache
        self.action = FORWARD
        self.key = b""
        self.request: policy.Directives = policy.NONE
        self.entry: Entry | None = None  # to serve, or to revalidate
        self.fill: Fill | None = None  # ours: the response streams into it
        self.conditional = b""  # validator lines to add to the forwarded request
        self.word = b"fwd=uri-miss"  # the Cache-Status parameters (RFC 9211)
        self.requested_at = 0.0
        self.facts: policy.Response | None = None
        self.stored: Entry | None = None  # the entry the response will become
        self.complete = False  # the whole response body arrived
        self.waited = False  # woken from a collapsed wait once already
        self.fields: dict[bytes, bytes] = {}  # the request's fields of _READ

    def end(self) -> list[Waiter]:
        """The exchange is over: commit a complete fill, abandon any other."""
        fill, self.fill = self.fill, None
        if fill is None:
            return []
        store = self.cache.store
        entry = self.stored if self.complete and fill.storing else None
        if entry is not None:
            chunks = fill.chunks or []
            entry.body = tuple(chunks)
            entry.size += fill.size
        return store.commit(fill, entry)


def lookup(flow: Flow, head: RequestHead, peer: str, now: float) -> int:
    """What a request to a caching proxy leads to (sets ``flow.action`` and returns it)."""
    cache = flow.cache
    method = head.method
    if method == b"PURGE":
        flow.action = PURGE
        return PURGE
    if method in _UNSAFE:
        # §4.4: the response will change the target; dropping it now is always allowed.
        cache.store.remove_key(_key(cache, head))
        return FORWARD
    fields = flow.fields = _fields(head)
    if method not in (b"GET", b"HEAD") or b"range" in fields:
        flow.word = b"fwd=bypass"
        return FORWARD
    request = flow.request = policy.request_directives(
        fields.get(b"cache-control"), fields.get(b"pragma")
    )
    authorized = b"authorization" in fields
    key = flow.key = _key(cache, head)
    flow.requested_at = now
    entry = _stored(cache.store, key, head)
    if entry is not None and not (authorized and not policy.authorization_allows(entry.fresh)):
        verdict = policy.serve(entry.fresh, request, now)
        if verdict == policy.HIT:
            return _serve(flow, entry, b"hit")
        if verdict == policy.STALE_WHILE_REVALIDATE:
            return _serve(flow, entry, SWR_WORD)
        flow.entry = entry
        flow.word = b"fwd=stale"
        if not any(c in fields for c in _CONDITIONALS):
            flow.conditional = entry.conditional_lines()
    elif entry is None:
        flow.word = b"fwd=uri-miss" if cache.store.vary_names(key) is None else b"fwd=vary-miss"
    else:
        flow.word = b"fwd=request"  # Authorization, and the entry does not allow it
        return FORWARD
    store = cache.store
    if method != b"GET" or "no-store" in request or authorized:
        store.counters.misses += 1
        return FORWARD  # nothing to store: no fill, no collapsing
    waiting = store.filling(key)
    if waiting is not None and not flow.waited:
        flow.action = WAIT
        return WAIT
    store.counters.misses += 1
    if waiting is None:
        flow.fill = store.start_fill(key)
    return FORWARD


def _key(cache: PlanCache, head: RequestHead) -> bytes:
    return request_key(head.host, head.url, cache.key, head.header)


def _stored(store: ProxyCache, key: bytes, head: RequestHead) -> Entry | None:
    names = store.vary_names(key)
    if names is None:
        return None
    return store.get(key, vary_values(names, head.header))


def _serve(flow: Flow, entry: Entry, word: bytes) -> int:
    flow.entry = entry
    flow.word = word
    flow.action = SERVE
    flow.cache.store.counters.hits += 1
    return SERVE


def refresh_flow(served: Flow, head: RequestHead) -> Flow | None:
    """The flow of a background refresh of the stale entry ``served`` answers with, or
    None: a HEAD (a GET is what is stored), or a fetch of the key already under way."""
    store = served.cache.store
    entry = served.entry
    if head.method != b"GET" or entry is None or store.filling(served.key) is not None:
        return None
    flow = Flow(served.cache)
    flow.key = served.key
    flow.request = served.request
    flow.fields = served.fields
    flow.requested_at = served.requested_at
    flow.entry = entry
    flow.conditional = entry.conditional_lines()
    flow.word = b"fwd=stale"
    flow.fill = store.start_fill(served.key)
    return flow


def finish(flow: Flow) -> None:
    """End ``flow``'s fill now (a refresh that is over, or a response that will not be
    stored): commit or abandon it, and wake whoever waits on it."""
    for waiter in flow.end():
        waiter()


def wait_on(flow: Flow, waiter: Waiter) -> None:
    """Call ``waiter`` once the fill for ``flow.key`` ends."""
    fill = flow.cache.store.filling(flow.key)
    assert fill is not None
    fill.waiters.append(waiter)
    flow.waited = True


def on_response(flow: Flow, head: ResponseHead, request: RequestHead, now: float) -> None:
    """The backend's final head arrived: decide whether its body goes into the fill. A
    response that will not be stored ends the fill at once, so that requests waiting on
    it go to the backend now rather than after this body."""
    fill = flow.fill
    if fill is None:
        return
    fields = header_map(head.pieces)
    facts = response_facts(head.status, fields)
    authorized = b"authorization" in flow.fields
    if not policy.storable(
        b"GET", flow.request, facts, authorized=authorized, default_ttl=flow.cache.default_ttl
    ):
        flow.word += b"; fwd-status=%d" % head.status
        finish(flow)  # abandoned now: the waiters are woken (they forward on their own)
        return
    flow.word += b"; fwd-status=%d; stored" % head.status
    flow.stored = Entry(
        key=flow.key,
        host=request.host,
        target=request.url,
        status=head.status,
        reason=head.reason,
        head=stored_head(head.pieces),
        body=(),
        body_size=0,
        fresh=policy.freshness(facts, flow.cache.default_ttl, flow.requested_at, now),
        facts=facts,
        tags=surrogate_keys(fields),
        vary_values=vary_values(facts.vary, request.header),
    )
    fill.begin()


def stale_on_error(flow: Flow, status: int, now: float) -> bool:
    """RFC 5861 ``stale-if-error``: the origin answered a revalidation with a 5xx and
    the stale entry may stand in for it (sets the Cache-Status words when so)."""
    entry = flow.entry
    if status < 500 or entry is None or not policy.usable_on_error(entry.fresh, now):
        return False
    flow.word = b"fwd=stale; fwd-status=%d; detail=stale-if-error" % status
    return True


def refreshed(flow: Flow, head: ResponseHead, now: float) -> Entry:
    """A 304 answered our validators: the stored entry with the 304's fields merged in
    and its freshness restarted (RFC 9111 §4.3.4), stored in place of the old one."""
    old = flow.entry
    assert old is not None
    merged = merged_head(old.head, head.pieces)
    pieces = _pieces(merged)
    facts = response_facts(old.status, header_map(pieces))
    entry = Entry(
        key=old.key,
        host=old.host,
        target=old.target,
        status=old.status,
        reason=old.reason,
        head=merged,
        body=old.body,
        body_size=old.body_size,
        fresh=policy.freshness(facts, flow.cache.default_ttl, flow.requested_at, now),
        facts=facts,
        tags=old.tags,
        vary_values=old.vary_values,
    )
    flow.cache.store.put(entry)
    flow.word = b"fwd=stale; fwd-status=304"
    return entry


def _pieces(block: bytes) -> list[bytes]:
    out: list[bytes] = []
    for line in block.split(b"\r\n"):
        name, sep, value = line.partition(b": ")
        if sep:
            out.extend((name, b": ", value, b"\r\n"))
    return out


def not_modified(entry: Entry, flow: Flow) -> bool:
    """Whether the client's own conditional makes a hit a 304 (RFC 9110 §13.2.2)."""
    fields = flow.fields
    if not fields:
        return False
    inm = fields.get(b"if-none-match")
    if inm is not None:
        if entry.etag is None:
            return False
        tags = [t.strip().removeprefix(b"W/") for t in inm.split(b",")]
        return b"*" in tags or entry.etag.removeprefix(b"W/") in tags
    ims = policy.http_date(fields.get(b"if-modified-since"))
    modified = policy.http_date(entry.last_modified)
    return ims is not None and modified is not None and modified <= ims


def status_header(word: bytes) -> bytes:
    return b"Cache-Status: portway; " + word + b"\r\n"


def hit_head(entry: Entry, flow: Flow, now: float, close: bool, http10: bool) -> bytes:
    """The head of a cached answer: the stored fields, Age, Cache-Status, the length."""
    age = int(entry.fresh.age(now))
    connection = (
        b"Connection: close\r\n" if close else (b"Connection: keep-alive\r\n" if http10 else b"")
    )
    return b"".join(
        (
            status_line(entry.status, entry.reason),
            entry.head,
            b"Age: %d\r\n" % age,
            status_header(flow.word),
            b"Content-Length: %d\r\n" % entry.body_size,
            connection,
            b"\r\n",
        )
    )


def not_modified_head(entry: Entry, flow: Flow, now: float, close: bool) -> bytes:
    keep = (b"etag", b"cache-control", b"expires", b"vary", b"date", b"last-modified")
    lines = [
        line + b"\r\n"
        for line in entry.head.split(b"\r\n")
        if line.partition(b":")[0].lower() in keep
    ]
    return b"".join(
        (
            b"HTTP/1.1 304 Not Modified\r\n",
            *lines,
            b"Age: %d\r\n" % int(entry.fresh.age(now)),
            status_header(flow.word),
            b"Connection: close\r\n" if close else b"",
            b"\r\n",
        )
    )


def purged_answer(gone: int, close: bool) -> bytes:
    """The answer to an allowed PURGE: 200 with the count, 404 when nothing was held."""
    body = b'{"purged": %d}\n' % gone
    return b"".join(
        (
            b"HTTP/1.1 200 OK\r\n" if gone else b"HTTP/1.1 404 Not Found\r\n",
            b"Content-Type: application/json\r\nCache-Control: no-store\r\n",
            b"Content-Length: %d\r\n" % len(body),
            b"Connection: close\r\n" if close else b"",
            b"\r\n",
            body,
        )
    )


def purge_one(cache: PlanCache, head: RequestHead) -> int:
    """The PURGE method: the entries of this one URL; how many went."""
    return Purge(urls=((host_only(head.host), head.url),)).apply(cache.store)
