"""The per-proxy store: LRU bound, Vary variants, fills that commit only when whole,
collapsed waiters, and purges by URL, prefix and surrogate key."""

from __future__ import annotations

from portway.cache import policy
from portway.cache.entry import Entry, merged_head, request_key, surrogate_keys
from portway.cache.store import CacheCounters, ProjectCache, ProxyCache, Purge
from portway.model import CacheKey


def _entry(
    target: bytes, size: int = 100, tags: frozenset[str] = frozenset(), **kw: object
) -> Entry:
    facts = policy.Response(status=200, directives={"max-age": "60"}, **kw)  # type: ignore[arg-type]
    key = request_key(b"h.test", target, CacheKey(), lambda _n: None)
    return Entry(
        key=key,
        host=b"h.test",
        target=target,
        status=200,
        reason=b"OK",
        head=b"",
        body=(b"x" * size,),
        body_size=size,
        fresh=policy.freshness(facts, None, 0.0, 0.0),
        facts=facts,
        tags=tags,
        vary_values=(),
    )


def test_least_recently_used_entries_go_first_and_counters_follow() -> None:
    counters = CacheCounters()
    store = ProxyCache(2000, counters)  # each entry: 500 bytes of body plus its overhead
    a, b, c = _entry(b"/a", 500), _entry(b"/b", 500), _entry(b"/c", 500)
    store.put(a)
    store.put(b)
    assert store.get(a.key, ()) is a  # a is now the most recent
    assert store.put(c) == 1
    assert store.get(b.key, ()) is None and store.get(a.key, ()) is a
    assert counters.evictions == 1 and counters.stored_bytes == store.bytes <= 2000


def test_an_entry_larger_than_the_bound_is_never_stored() -> None:
    store = ProxyCache(500, CacheCounters())
    assert store.put(_entry(b"/big", 1000)) == 0 and len(store) == 0


def test_a_fill_is_invisible_until_committed_and_abandoned_leaves_nothing() -> None:
    store = ProxyCache(10_000, CacheCounters())
    entry = _entry(b"/f")
    fill = store.start_fill(entry.key)
    fill.begin()
    fill.append(b"half")
    assert store.get(entry.key, ()) is None and store.filling(entry.key) is fill
    woken: list[int] = []
    fill.waiters.append(lambda: woken.append(1))
    for waiter in store.commit(fill, None):
        waiter()
    assert woken == [1] and store.get(entry.key, ()) is None and store.filling(entry.key) is None


def test_a_fill_past_the_bound_drops_its_chunks() -> None:
    store = ProxyCache(1000, CacheCounters())
    fill = store.start_fill(b"k")
    fill.begin()
    fill.append(b"x" * 2000)
    assert fill.overflow and fill.chunks is None
    store.commit(fill, _entry(b"/k"))
    assert len(store) == 0


def test_vary_variants_and_a_changed_vary_drops_the_old_ones() -> None:
    store = ProxyCache(10_000, CacheCounters())
    en = _entry(b"/v", vary=("accept-language",))
    en.vary_values = (b"en",)
    de = _entry(b"/v", vary=("accept-language",))
    de.vary_values = (b"de",)
    store.put(en)
    store.put(de)
    assert store.vary_names(en.key) == ("accept-language",) and len(store) == 2
    store.put(_entry(b"/v"))  # the resource stopped varying
    assert len(store) == 1 and store.vary_names(en.key) == ()


def test_purges_by_url_prefix_and_surrogate_key() -> None:
    store = ProxyCache(100_000, CacheCounters())
    for target, tags in ((b"/a?x=1", {"t1"}), (b"/static/1", {"t2"}), (b"/static/2", {"t1", "t2"})):
        store.put(_entry(target, tags=frozenset(tags)))
    assert Purge(urls=((b"H.test", b"/a?x=1"),)).apply(store) == 1
    assert Purge(tags=("t1",)).apply(store) == 1
    assert Purge(prefixes=(b"/static/",)).apply(store) == 1
    assert len(store) == 0 and store.bytes == 0


def test_surrogate_keys_from_both_headers() -> None:
    fields = {b"surrogate-key": [b"a b"], b"cache-tag": [b"c, d"]}
    assert surrogate_keys(fields) == {"a", "b", "c", "d"}


def test_a_304_replaces_fields_but_never_the_framing() -> None:
    old = b'ETag: "1"\r\nContent-Length: 5\r\nX-A: old\r\n'
    update = [b"X-A", b": ", b"new", b"\r\n", b"Content-Length", b": ", b"0", b"\r\n"]
    assert merged_head(old, update) == b'ETag: "1"\r\nContent-Length: 5\r\nX-A: new\r\n'


def test_the_key_holds_host_target_and_the_tenants_headers() -> None:
    headers = {b"accept-language": b"en"}
    key = CacheKey(query=False, headers=("Accept-Language",))
    assert request_key(b"H.test", b"/p?q=1", key, headers.get) == b"h.test\0/p\0en"


def test_replacing_an_entry_keeps_it_findable() -> None:
    store = ProxyCache(10_000, CacheCounters())
    store.put(_entry(b"/r"))
    newer = _entry(b"/r")
    store.put(newer)
    assert store.get(newer.key, ()) is newer and len(store) == 1


def test_fills_under_way_share_the_bound() -> None:
    store = ProxyCache(10_000, CacheCounters())
    first, second = store.start_fill(b"a"), store.start_fill(b"b")
    first.begin()
    second.begin()
    first.append(b"x" * 6000)
    second.append(b"x" * 6000)  # 12 000 held by fills at once: the second lets go
    assert first.storing and not second.storing and second.overflow
    assert store.filling_bytes == 6000
    store.commit(first, None)
    store.commit(second, None)
    assert store.filling_bytes == 0


SIZE = _entry(b"/x", 500).size  # 500 bytes of body, the overhead, a 2-byte target


def test_a_projects_caches_together_stay_under_its_bound_the_largest_giving_way() -> None:
    counters = CacheCounters()
    project = ProjectCache(4 * SIZE)
    big, small = ProxyCache(10 * SIZE, counters, project), ProxyCache(10 * SIZE, counters, project)
    for name in (b"/a", b"/b", b"/c"):
        big.put(_entry(name, 500))
    small.put(_entry(b"/s", 500))
    assert project.bytes == big.bytes + small.bytes == 4 * SIZE
    assert len(big) == 3 and len(small) == 1 and counters.evictions == 0
    # The next entry takes the project past its bound: the largest cache (big) gives up
    # its least recently used entry, not the small one its only one.
    small.put(_entry(b"/t", 500))
    assert project.bytes == 4 * SIZE and len(small) == 2 and len(big) == 2
    assert big.get(_entry(b"/a").key, ()) is None
    assert counters.evictions == 1 and counters.stored_bytes == project.bytes


def test_a_lowered_project_bound_trims_at_once_and_refuses_larger_entries() -> None:
    project = ProjectCache()
    cache = ProxyCache(10 * SIZE, CacheCounters(), project)
    for name in (b"/a", b"/b", b"/c", b"/d"):
        cache.put(_entry(name, 500))
    assert project.set_limit(2 * SIZE + 1) == 2  # the two least recently used go
    assert project.bytes == cache.bytes == 2 * SIZE and len(cache) == 2
    assert cache.get(_entry(b"/a").key, ()) is None and cache.get(_entry(b"/d").key, ())
    assert cache.put(_entry(b"/big", 3 * SIZE)) == 0 and cache.get(_entry(b"/big").key, ()) is None
    project.set_limit(None)
    cache.put(_entry(b"/big", 3 * SIZE))
    assert project.bytes > 3 * SIZE


def test_fills_are_held_to_the_project_bound_too() -> None:
    project = ProjectCache(1000)
    one, two = (
        ProxyCache(10_000, CacheCounters(), project),
        ProxyCache(10_000, CacheCounters(), project),
    )
    first, second = one.start_fill(b"k1"), two.start_fill(b"k2")
    first.begin()
    second.begin()
    first.append(b"x" * 600)
    second.append(b"x" * 600)  # 1200 filling in the project: this one stops keeping
    assert first.storing and not second.storing and second.overflow
    assert project.filling_bytes == 600


def test_a_closed_cache_leaves_its_project_with_its_bytes() -> None:
    project = ProjectCache(10_000)
    cache = ProxyCache(10_000, CacheCounters(), project)
    cache.put(_entry(b"/a", 500))
    cache.close()
    assert project.bytes == 0 and project.members == []
