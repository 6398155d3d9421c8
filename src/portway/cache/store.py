"""One proxy's cache in one worker: a size-bounded LRU of complete entries, the fills
in progress, and the purge indexes. Plain data structures, no I/O and no clock.

Two bounds hold in each worker: the proxy's own (``max_bytes``) and its project's
(:class:`ProjectCache`, the ``cache_bytes`` quota), shared by the project's caches. Past
the project's, the largest of its caches gives up its least recently used entries, so a
busy proxy cannot starve the project's others of their share.

Visibility: a response streams into a :class:`Fill` while it streams to the client, and
becomes an :class:`~portway.cache.entry.Entry` only on ``commit`` (the whole body
arrived); a fill that is abandoned (the origin broke off, the body outgrew the bound)
leaves nothing behind, so a half-written response is never served. Bodies are kept as
the list of chunks the upstream parser produced (the very objects sent to the client),
never joined: a large body is held once, not twice.

Collapsed forwarding: the first miss for a key owns the fill; later misses for the same
key ``wait`` on it and are called back once it commits or is abandoned (they then
look up again, and forward on their own if nothing usable came of it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from portway.cache.entry import OVERHEAD, Entry
from portway.observability.metrics import CacheCounters

__all__ = ["CacheCounters", "Fill", "ProjectCache", "ProxyCache", "Purge", "host_only"]

NO_LIMIT = 1 << 62  # ProjectCache.limit of a project without a cache_bytes quota

Waiter = Callable[[], None]
VariantKey = tuple[bytes, tuple[bytes, ...]]


class Fill:
    """A response being stored while it is forwarded (see the module docstring)."""

    __slots__ = ("_store", "chunks", "key", "overflow", "size", "waiters")

    def __init__(self, store: ProxyCache, key: bytes) -> None:
        self._store = store
        self.key = key
        self.chunks: list[bytes] | None = None  # None until the head says "store it"
        self.size = 0
        self.overflow = False
        self.waiters: list[Waiter] = []

    def begin(self) -> None:
        self.chunks = []

    def append(self, data: bytes) -> None:
        """A body chunk (the upstream connection's tee); past the bound, stop keeping."""
        chunks = self.chunks
        if chunks is None:
            return
        store = self._store
        self.size += len(data)
        store.count_filling(len(data))
        # Past the bound alone, or with the other fills under way: many large misses at
        # once must not hold many times max_bytes (or the project's bound) between them.
        if self.size + OVERHEAD > store.max_bytes or store.fills_over():
            self.drop()
            return
        chunks.append(data)

    def drop(self) -> None:
        """Keep nothing more (the body still streams to its client)."""
        if self.chunks is not None:
            self._store.count_filling(-self.size)
            self.chunks = None
        self.overflow = True

    @property
    def storing(self) -> bool:
        return self.chunks is not None


class ProjectCache:
    """What one project's caches hold together in one worker, and the bound on it (its
    ``cache_bytes`` quota; None: none). Owned by the caches it lists: they update it
    as they store, evict and fill."""

    __slots__ = ("bytes", "filling_bytes", "limit", "members")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = NO_LIMIT if limit is None else limit
        self.bytes = 0
        self.filling_bytes = 0
        self.members: list[ProxyCache] = []

    def trim(self) -> int:
        """Evict until the project is within its bound: from the largest of its caches,
        its least recently used first. How many entries went."""
        evicted = 0
        while self.bytes > self.limit:
            largest = max(self.members, key=_held)
            if not largest.evict_oldest():
                break  # nothing left to evict: the rest are fills, bounded on their own
            evicted += 1
        return evicted

    def set_limit(self, limit: int | None) -> int:
        """A new bound (the quota changed): trimmed to at once; entries evicted."""
        self.limit = NO_LIMIT if limit is None else limit
        return self.trim()


def _held(cache: ProxyCache) -> int:
    return cache.bytes


class ProxyCache:
    """The cache of one proxy (one per worker); ``max_bytes`` bounds its entries, and
    ``project`` (shared with the project's other caches) their sum with theirs."""

    __slots__ = (
        "_count",
        "_fills",
        "_lru",
        "_tags",
        "_vary",
        "bytes",
        "counters",
        "filling_bytes",
        "max_bytes",
        "project",
    )

    def __init__(
        self, max_bytes: int, counters: CacheCounters, project: ProjectCache | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.counters = counters
        self.project = ProjectCache() if project is None else project
        self.project.members.append(self)
        self.bytes = 0
        self.filling_bytes = 0  # body bytes held by fills under way (not yet entries)
        self._lru: OrderedDict[VariantKey, Entry] = OrderedDict()
        self._vary: dict[bytes, tuple[str, ...]] = {}  # primary key → its Vary names
        self._count: dict[bytes, int] = {}  # primary key → variants stored
        self._tags: dict[str, set[VariantKey]] = {}
        self._fills: dict[bytes, Fill] = {}

    def __len__(self) -> int:
        return len(self._lru)

    # -- lookups ------------------------------------------------------------

    def vary_names(self, key: bytes) -> tuple[str, ...] | None:
        """The Vary names of the responses stored under ``key`` (None: nothing stored)."""
        return self._vary.get(key)

    def get(self, key: bytes, values: tuple[bytes, ...]) -> Entry | None:
        entry = self._lru.get((key, values))
        if entry is not None:
            self._lru.move_to_end((key, values))
        return entry

    # -- fills and collapsed forwarding ---------------------------------------

    def filling(self, key: bytes) -> Fill | None:
        return self._fills.get(key)

    def start_fill(self, key: bytes) -> Fill:
        fill = self._fills[key] = Fill(self, key)
        return fill

    def commit(self, fill: Fill, entry: Entry | None) -> list[Waiter]:
        """End ``fill``: store ``entry`` (None: abandoned); the waiters to call back."""
        if self._fills.get(fill.key) is fill:
            del self._fills[fill.key]
        if fill.chunks is not None:
            self.count_filling(-fill.size)  # now stored, or let go
        if entry is not None and not fill.overflow:
            self.put(entry)
        waiters, fill.waiters = fill.waiters, []
        return waiters

    # -- storing and evicting ----------------------------------------------

    def count_filling(self, delta: int) -> None:
        self.filling_bytes += delta
        self.project.filling_bytes += delta

    def fills_over(self) -> bool:
        """Whether the fills under way hold more than either bound allows."""
        project = self.project
        return self.filling_bytes > self.max_bytes or project.filling_bytes > project.limit

    def put(self, entry: Entry) -> int:
        """Store ``entry`` (replacing its variant); returns how many entries were evicted."""
        if entry.size > self.max_bytes or entry.size > self.project.limit:
            return 0
        names = self._vary.get(entry.key)
        if names is not None and names != entry.vary:
            self.remove_key(entry.key)  # the resource changed its Vary: old variants go
        variant = (entry.key, entry.vary_values)
        old = self._lru.pop(variant, None)
        if old is not None:
            self._forget(variant, old)
        self._vary[entry.key] = entry.vary  # after _forget, which drops it with the last
        self._lru[variant] = entry
        self._count[entry.key] = self._count.get(entry.key, 0) + 1
        self._account(entry.size)
        for tag in entry.tags:
            self._tags.setdefault(tag, set()).add(variant)
        evicted = 0
        while self.bytes > self.max_bytes:
            self.evict_oldest()
            evicted += 1
        evicted += self.project.trim()
        return evicted

    def evict_oldest(self) -> bool:
        """Drop the least recently used entry (False: there is none)."""
        if not self._lru:
            return False
        victim, gone = self._lru.popitem(last=False)
        self._forget(victim, gone)
        self.counters.evictions += 1
        return True

    def _account(self, delta: int) -> None:
        self.bytes += delta
        self.project.bytes += delta
        self.counters.stored_bytes += delta

    def _forget(self, variant: VariantKey, entry: Entry) -> None:
        """Bookkeeping for an entry already popped from the LRU."""
        self._account(-entry.size)
        for tag in entry.tags:
            keyed = self._tags.get(tag)
            if keyed is not None:
                keyed.discard(variant)
                if not keyed:
                    del self._tags[tag]
        key = variant[0]
        left = self._count.get(key, 1) - 1
        if left > 0:
            self._count[key] = left
        else:
            self._count.pop(key, None)
            self._vary.pop(key, None)

    # -- purges ------------------------------------------------------------

    def remove_key(self, key: bytes) -> int:
        """Every variant stored under primary key ``key``; how many went."""
        return self._remove([v for v in self._lru if v[0] == key])

    def purge_where(self, match: Callable[[Entry], bool]) -> int:
        return self._remove([v for v, e in self._lru.items() if match(e)])

    def purge_tags(self, tags: Iterable[str]) -> int:
        found: set[VariantKey] = set()
        for tag in tags:
            found |= self._tags.get(tag, set())
        return self._remove(list(found))

    def _remove(self, variants: list[VariantKey]) -> int:
        for variant in variants:
            entry = self._lru.pop(variant, None)
            if entry is not None:
                self._forget(variant, entry)
        return len(variants)

    def clear(self) -> None:
        self._remove(list(self._lru))

    def close(self) -> None:
        """Empty, and leave the project (the proxy's cache is gone or replaced)."""
        self.clear()
        self.project.members.remove(self)


def host_only(host: bytes) -> bytes:
    """``name:port`` → ``name`` (an IPv6 literal keeps its brackets)."""
    name, colon, port = host.rpartition(b":")
    return name if colon and port.isdigit() and not name.endswith(b":") else host


@dataclass(frozen=True, slots=True)
class Purge:
    """What to drop: exact URLs (host without its port, or None for any host of the
    proxy, and the request target, query included), path prefixes (of the target), and
    surrogate keys; empty fields match nothing."""

    urls: tuple[tuple[bytes | None, bytes], ...] = ()
    prefixes: tuple[bytes, ...] = ()
    tags: tuple[str, ...] = ()

    def apply(self, cache: ProxyCache) -> int:
        gone = 0
        if self.urls:
            exact = {(h.lower(), t) for h, t in self.urls if h is not None}
            anywhere = {t for h, t in self.urls if h is None}
            gone += cache.purge_where(
                lambda e: e.target in anywhere or (host_only(e.host), e.target) in exact
            )
        if self.prefixes:
            prefixes = self.prefixes
            gone += cache.purge_where(lambda e: e.target.startswith(prefixes))
        if self.tags:
            gone += cache.purge_tags(self.tags)
        return gone
