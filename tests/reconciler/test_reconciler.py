"""The reconciler over the real store (SQLite and PostgreSQL): incremental snapshots that
equal a full rebuild, immediate wake-ups, and the last good snapshot kept on failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from tests.reconciler.seed import admin, draft

from portway.model import Proxy
from portway.model.quota import UNLIMITED, Quota
from portway.reconciler.reconciler import Reconciler
from portway.router import Snapshot
from portway.runtime.worker_messages import delta_message, full_message
from portway.service import BackendSpec, Service
from portway.store import Store


def routed(snapshot: Snapshot, host: str, path: str = "/") -> str | None:
    route = snapshot.routes.match(host, path)
    return None if route is None else route.proxy.hostname + route.prefix


def test_steps_follow_creates_updates_and_deletes(store: Store) -> None:
    service = Service(store)
    actor = admin(service)
    published: list[tuple[int, set[str] | None]] = []
    rec = Reconciler(store, lambda snap, changed: published.append((snap.version, changed)))
    first = rec.build_initial()
    assert len(first.routes) == 0 and published == [(first.version, None)]

    a = service.create_proxy(
        actor, "alpha", draft("a.alpha.test"), [BackendSpec(address="10.0.0.1")]
    )
    b = service.create_proxy(actor, "alpha", draft("b.alpha.test", "/x"), [])
    snap = rec.step()
    assert snap is not None and snap.version == store.current_revision()
    assert routed(snap, "a.alpha.test") == "a.alpha.test/"
    assert routed(snap, "b.alpha.test", "/x/y") == "b.alpha.test/x"
    assert published[-1][1] == {a.id, b.id}

    service.update_proxy(actor, "alpha", a.id, {"hostname": "c.alpha.test"})
    service.delete_proxy(actor, "alpha", b.id)
    snap = rec.step()
    assert snap is not None
    assert routed(snap, "a.alpha.test") is None
    assert routed(snap, "c.alpha.test") == "c.alpha.test/"
    assert routed(snap, "b.alpha.test", "/x") is None
    assert rec.step() is None  # nothing new

    full = Reconciler(store, lambda s, c: None).build_initial()
    assert {r.proxy for r in full.routes.routes()} == {r.proxy for r in snap.routes.routes()}


def test_backend_change_republishes_its_proxy(store: Store) -> None:
    service = Service(store)
    actor = admin(service)
    proxy = service.create_proxy(actor, "alpha", draft("a.alpha.test"), [])
    rec = Reconciler(store, lambda s, c: None)
    rec.build_initial()
    service.add_backend(actor, "alpha", proxy.id, BackendSpec(address="10.0.0.9", port=81))
    snap = rec.step()
    assert snap is not None
    route = snap.routes.get(proxy.id)
    assert route is not None and [(b.address, b.port) for b in route.proxy.backends] == [
        ("10.0.0.9", 81)
    ]


def test_run_wakes_on_commit_without_waiting_for_the_poll(store: Store) -> None:
    service = Service(store)
    actor = admin(service)

    async def main() -> float:
        applied = asyncio.Event()
        rec = Reconciler(
            store, lambda s, c: applied.set() if len(s.routes) else None, poll_interval=30
        )
        rec.build_initial()
        task = asyncio.create_task(rec.run())
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await asyncio.to_thread(service.create_proxy, actor, "alpha", draft("w.alpha.test"), [])
        await asyncio.wait_for(applied.wait(), 5)
        task.cancel()
        return time.monotonic() - start

    assert asyncio.run(main()) < 1.0


class FlakyStore:
    """The real store, whose next change read fails once (a lost DB connection)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.fail = False

    def current_revision(self) -> int:
        return self.store.current_revision()

    def load_proxies(self, ids: Iterable[str] | None = None) -> list[Proxy]:
        return self.store.load_proxies(ids)

    def changed_proxy_ids(self, since_revision: int) -> tuple[int, set[str]]:
        if self.fail:
            self.fail = False
            raise RuntimeError("connection lost")
        return self.store.changed_proxy_ids(since_revision)

    def revision_marks(self, revisions: Iterable[int]) -> dict[int, str]:
        return self.store.revision_marks(revisions)

    def resync_past(self, seen: int, actor: str) -> int:
        return self.store.resync_past(seen, actor)

    def cache_quotas(self) -> dict[str, int]:
        return self.store.cache_quotas()

    def add_commit_listener(self, callback: object) -> None:
        self.store.add_commit_listener(callback)  # type: ignore[arg-type]


def test_failed_build_keeps_the_last_good_snapshot_and_retries(store: Store) -> None:
    service = Service(store)
    actor = admin(service)
    reader = FlakyStore(store)

    async def main() -> tuple[int, int]:
        rec = Reconciler(reader, lambda s, c: None, poll_interval=0.05)
        before = rec.build_initial().version
        task = asyncio.create_task(rec.run())
        reader.fail = True
        await asyncio.to_thread(service.create_proxy, actor, "alpha", draft("f.alpha.test"), [])
        for _ in range(100):
            await asyncio.sleep(0.02)
            if rec.snapshot is not None and rec.snapshot.version > before:
                break
        task.cancel()
        assert not reader.fail, "the failing read was never attempted"
        assert rec.snapshot is not None
        return before, rec.snapshot.version

    before, after = asyncio.run(main())
    assert after == store.current_revision() > before


def test_snapshots_carry_the_cache_quotas_and_a_quota_change_publishes_them(
    store: Store,
) -> None:
    service = Service(store)
    actor = admin(service)
    published: list[tuple[Snapshot, set[str] | None]] = []
    rec = Reconciler(store, lambda s, c: published.append((s, c)), cache_quota_default=1 << 30)
    first = rec.build_initial()
    assert first.cache_limits.of("alpha") == 1 << 30
    service.set_quota(actor, "alpha", Quota(cache_bytes=5000))
    snap = rec.step()  # no proxy changed, the quota did
    assert snap is not None and published[-1] == (snap, set())
    assert snap.cache_limits.of("alpha") == 5000 and snap.cache_limits.of("beta") == 1 << 30
    service.set_quota(actor, "alpha", Quota(cache_bytes=UNLIMITED))
    later = rec.step()
    assert later is not None and later.cache_limits.of("alpha") is None
    # What a worker is sent carries them too, whole or as a delta.
    assert full_message(later).cache_limits == later.cache_limits
    assert delta_message(later, set()).cache_limits == later.cache_limits
