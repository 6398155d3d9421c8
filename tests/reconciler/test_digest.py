"""The route digest nodes compare: the same routes give the same digest, whatever order
they were built in, and the incremental update equals a digest computed afresh."""

from __future__ import annotations

import dataclasses

from portway.model import Backend, Proxy
from portway.reconciler.digest import as_text, digest_of, next_digest
from portway.router import RouteTable


def proxy(i: int, port: int = 80) -> Proxy:
    backend = Backend(id=f"b{i}", address="10.0.0.1", port=port)
    return Proxy(id=f"p{i}", project="x", hostname=f"h{i}.d.test", backends=(backend,))


def test_order_does_not_matter_and_content_does() -> None:
    proxies = [proxy(i) for i in range(50)]
    forward = digest_of(RouteTable.build(proxies))
    assert forward == digest_of(RouteTable.build(reversed(proxies)))
    changed = [*proxies[:-1], dataclasses.replace(proxies[-1], hostname="other.d.test")]
    assert digest_of(RouteTable.build(changed)) != forward
    assert len(as_text(forward)) == 32


def test_the_incremental_digest_equals_the_fresh_one() -> None:
    before = RouteTable.build(proxy(i) for i in range(20))
    after = before.with_changes(upserts=[proxy(3, port=81), proxy(99)], removed={"p7"})
    changed = {"p3", "p99", "p7"}
    assert next_digest(digest_of(before), before, after, changed) == digest_of(after)
