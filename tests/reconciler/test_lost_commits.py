"""A failover that loses commits: the store forgets revisions a node has applied.

With asynchronous replication, a promoted replica may lack the primary's last commits.
A node that applied them holds revisions the store no longer has, and new writes take
those numbers again, so the node's delta query ("after my revision") would skip them.
The node must notice, move the revision above everything it applied, and load the
whole store again. The failover is played by the store's own rows: the lost writes'
rows are deleted and the revision counter is put back, which is the state a replica
that never replayed them is in (the real promotion runs in tests/ha).
"""

from __future__ import annotations

import sqlalchemy as sa
from tests.reconciler.seed import admin, draft

from portway.reconciler.reconciler import Reconciler
from portway.router import Snapshot
from portway.service import BackendSpec, Service
from portway.store import Store
from portway.store.schema import backends, change_proxies, changes, proxies, revision


def hosts(snapshot: Snapshot) -> set[str]:
    return {route.proxy.hostname for route in snapshot.routes.routes()}


def lose_commits_after(store: Store, kept: int, lost_proxies: list[str]) -> None:
    """Put the store back to revision ``kept``, as a replica that never replayed the
    later commits (here: creations of ``lost_proxies``) is after its promotion."""
    with store.engine.begin() as conn:
        conn.execute(sa.delete(backends).where(backends.c.proxy_id.in_(lost_proxies)))
        conn.execute(sa.delete(proxies).where(proxies.c.id.in_(lost_proxies)))
        conn.execute(sa.delete(change_proxies).where(change_proxies.c.revision > kept))
        conn.execute(sa.delete(changes).where(changes.c.revision > kept))
        conn.execute(sa.update(revision).where(revision.c.id == 1).values(value=kept))


def test_a_revision_number_reused_by_another_write_is_not_taken_for_the_lost_one(
    store: Store,
) -> None:
    service = Service(store)
    actor = admin(service)
    backend = [BackendSpec(address="10.0.0.1")]
    service.create_proxy(actor, "alpha", draft("kept.alpha.test"), backend)
    node = Reconciler(store, lambda s, c: None)
    other = Reconciler(store, lambda s, c: None)  # a node that never saw the lost commit
    node.build_initial()
    kept = other.build_initial().version

    lost = service.create_proxy(actor, "alpha", draft("lost.alpha.test"), backend)
    applied = node.step()
    assert applied is not None and "lost.alpha.test" in hosts(applied)

    lose_commits_after(store, kept, [lost.id])
    # The first write after the promotion takes the lost write's number.
    service.create_proxy(actor, "alpha", draft("new.alpha.test"), backend)
    assert store.current_revision() == applied.version

    resynced = node.step()
    assert resynced is not None
    assert hosts(resynced) == {"kept.alpha.test", "new.alpha.test"}
    assert resynced.version > applied.version  # versions only grow, for every plane
    assert node.newest_revision == resynced.version  # readiness forgets the lost ones
    assert store.current_revision() == resynced.version

    # The node that never applied the lost write goes on with deltas, to the same table.
    caught_up = other.step()
    assert caught_up is not None and caught_up.version == resynced.version
    assert hosts(caught_up) == hosts(resynced)
    assert other.digest(caught_up.version) == node.digest(resynced.version)

    # And from there on both follow deltas again.
    service.create_proxy(actor, "alpha", draft("later.alpha.test"), backend)
    later = node.step()
    assert later is not None and "later.alpha.test" in hosts(later)
    assert node.step() is None


def test_a_store_behind_the_node_is_loaded_again_above_it(store: Store) -> None:
    service = Service(store)
    actor = admin(service)
    backend = [BackendSpec(address="10.0.0.1")]
    node = Reconciler(store, lambda s, c: None)
    kept = node.build_initial().version
    first = service.create_proxy(actor, "alpha", draft("a.alpha.test"), backend)
    second = service.create_proxy(actor, "alpha", draft("b.alpha.test"), backend)
    applied = node.step()
    assert applied is not None and hosts(applied) == {"a.alpha.test", "b.alpha.test"}

    lose_commits_after(store, kept, [first.id, second.id])
    service.create_proxy(actor, "alpha", draft("c.alpha.test"), backend)
    assert store.current_revision() < applied.version

    resynced = node.step()
    assert resynced is not None
    assert hosts(resynced) == {"c.alpha.test"}
    assert resynced.version > applied.version
    kinds = store.read(
        lambda r: r.conn.execute(
            sa.select(changes.c.kind, changes.c.action).where(
                changes.c.revision == resynced.version
            )
        ).all()
    )
    assert [tuple(k) for k in kinds] == [("store", "resync")]


def test_an_intact_history_costs_no_resync(store: Store) -> None:
    service = Service(store)
    actor = admin(service)
    node = Reconciler(store, lambda s, c: None)
    node.build_initial()
    for i in range(5):
        service.create_proxy(actor, "alpha", draft(f"p{i}.alpha.test"), [])
        assert node.step() is not None
    assert node.step() is None
    resyncs = store.read(
        lambda r: r.conn.execute(
            sa.select(sa.func.count()).select_from(changes).where(changes.c.kind == "store")
        ).scalar_one()
    )
    assert resyncs == 0
