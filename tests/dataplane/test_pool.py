"""The upstream pool's bookkeeping: LIFO reuse and trimming of surplus idle connections."""

from __future__ import annotations

from portway.dataplane.pool import UpstreamPool


class Conn:
    def __init__(self, name: str, usable: bool = True) -> None:
        self.name = name
        self.usable = usable

    def __repr__(self) -> str:
        return self.name


def test_reuse_is_lifo() -> None:
    pool: UpstreamPool[Conn] = UpstreamPool(4)
    b = pool.bucket("127.0.0.1", 80)
    a, c = Conn("a"), Conn("c")
    pool.release(b, a)
    pool.release(b, c)
    assert pool.acquire(b) is c


def test_unusable_connection_is_handed_back_on_release() -> None:
    pool: UpstreamPool[Conn] = UpstreamPool(4)
    b = pool.bucket("127.0.0.1", 80)
    dead = Conn("dead", usable=False)
    assert pool.release(b, dead) is dead
    assert b.idle == []


def test_busy_bucket_may_exceed_the_limit_without_closing() -> None:
    pool: UpstreamPool[Conn] = UpstreamPool(2)
    b = pool.bucket("127.0.0.1", 80)
    conns = [Conn(str(i)) for i in range(5)]
    for c in conns:
        assert pool.release(b, c) is None
    assert len(b.idle) == 5
    pool.trim()  # starts the interval
    for _ in range(5):  # a burst reuses every idle connection...
        assert pool.acquire(b) is not None
    for c in conns:  # ...and gives them back
        pool.release(b, c)
    assert pool.trim() == []  # all of them were needed during the interval
    assert len(b.idle) == 5


def test_trim_closes_oldest_unused_connections_down_to_the_limit() -> None:
    pool: UpstreamPool[Conn] = UpstreamPool(2)
    b = pool.bucket("127.0.0.1", 80)
    conns = [Conn(str(i)) for i in range(5)]
    for c in conns:
        pool.release(b, c)
    pool.trim()
    top = pool.acquire(b)  # one is used during the interval: 4 stayed idle throughout
    assert top is conns[4]
    pool.release(b, top)
    assert pool.trim() == conns[:3]  # the bottom of the stack went unused longest
    assert b.idle == [conns[3], conns[4]]
    assert pool.trim() == []


def test_drain_returns_every_idle_connection() -> None:
    pool: UpstreamPool[Conn] = UpstreamPool(1)
    b = pool.bucket("127.0.0.1", 80)
    conns = [Conn("a"), Conn("b")]
    for c in conns:
        pool.release(b, c)
    assert pool.drain() == conns
    assert pool.trim() == []


def test_plain_and_tls_connections_to_one_address_have_their_own_buckets() -> None:
    pool: UpstreamPool[Conn] = UpstreamPool(4)
    plain, tls = pool.bucket("127.0.0.1", 443), pool.bucket("127.0.0.1", 443, tls=True)
    assert plain is not tls and tls.tls and not plain.tls
    assert pool.bucket("127.0.0.1", 443, tls=True) is tls
    pool.release(tls, Conn("secure"))
    assert pool.acquire(plain) is None
