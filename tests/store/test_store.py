"""The store contract, run against SQLite and PostgreSQL through the ``store_url`` fixture."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from tests.conftest import _fresh_pg_database
from tests.pg import free_port

from portway.errors import ConflictError, StoreError
from portway.model import Backend, HealthCheck, Project, Proxy, SessionPersistence
from portway.store import Store, open_store
from portway.store.schema import metadata


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def _add_project(store: Store, name: str = "alpha") -> None:
    with store.transaction("test") as tx:
        tx.insert_project(Project(name=name))
        tx.record(kind="project", action="create", object_id=name, project=name)


def _proxy(pid: str, hostname: str, *backends: Backend) -> Proxy:
    return Proxy(id=pid, project="alpha", hostname=hostname, backends=backends)


def _add_proxy(store: Store, proxy: Proxy) -> int:
    with store.transaction("token:t1") as tx:
        tx.insert_proxy(proxy)
        tx.record(
            kind="proxy",
            action="create",
            object_id=proxy.id,
            project=proxy.project,
            after=proxy,
            proxy_id=proxy.id,
        )
        return tx.revision


def test_migrations_create_the_schema_the_code_expects(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert store.current_revision() == 0


def test_each_write_bumps_the_revision_by_exactly_one(store: Store) -> None:
    _add_project(store)
    assert store.current_revision() == 1
    assert _add_proxy(store, _proxy("a" * 32, "a.example.org")) == 2
    assert store.current_revision() == 2


def test_failed_write_rolls_back_revision_and_rows(store: Store) -> None:
    _add_project(store)
    with pytest.raises(RuntimeError), store.transaction("test") as tx:
        tx.insert_project(Project(name="beta"))
        raise RuntimeError("abort")
    assert store.current_revision() == 1
    assert [p.name for p in store.read(lambda r: r.list_projects())] == ["alpha"]


def test_write_without_change_record_is_refused(store: Store) -> None:
    with pytest.raises(StoreError), store.transaction("test") as tx:
        tx.insert_project(Project(name="alpha"))
    assert store.current_revision() == 0


def test_change_log_keeps_who_what_and_before_after(store: Store) -> None:
    _add_project(store)
    proxy = _proxy("b" * 32, "b.example.org")
    _add_proxy(store, proxy)
    with store.transaction("token:t2") as tx:
        before = tx.get_proxy(proxy.id)
        assert before is not None
        after = Proxy(**{**_fields(before), "algorithm": "least_conn"})
        tx.update_proxy(after)
        tx.record(
            kind="proxy",
            action="update",
            object_id=proxy.id,
            project="alpha",
            before=before,
            after=after,
            proxy_id=proxy.id,
        )
    newest = store.read(lambda r: r.list_changes(project="alpha"))[0]
    assert (newest.revision, newest.actor, newest.action) == (3, "token:t2", "update")
    assert newest.before is not None and newest.after is not None
    assert newest.before["algorithm"] == "round_robin"
    assert newest.after["algorithm"] == "least_conn"
    assert newest.at.tzinfo is not None


def _fields(proxy: Proxy) -> dict[str, object]:
    return {name: getattr(proxy, name) for name in proxy.__dataclass_fields__}


def test_duplicate_hostname_and_prefix_is_a_conflict(store: Store) -> None:
    _add_project(store)
    _add_proxy(store, _proxy("c" * 32, "c.example.org"))
    with pytest.raises(ConflictError):
        _add_proxy(store, _proxy("d" * 32, "c.example.org"))
    assert store.current_revision() == 2


def test_load_proxies_returns_backends_sorted_by_id(store: Store) -> None:
    _add_project(store)
    b1 = Backend(id="1" * 32, address="10.0.0.1", port=80, weight=3, backup=True, source="k8s")
    b2 = Backend(id="2" * 32, address="10.0.0.2", port=81)
    hc = HealthCheck(path="/health", interval=2.5)
    sp = SessionPersistence(type="cookie", cookie_name="sid")
    proxy = Proxy(
        id="f" * 32,
        project="alpha",
        hostname="f.example.org",
        health_check=hc,
        session_persistence=sp,
        backends=(b1, b2),
    )
    _add_proxy(store, proxy)
    _add_proxy(store, _proxy("e" * 32, "e.example.org"))
    loaded = store.load_proxies()
    assert [p.id for p in loaded] == ["e" * 32, "f" * 32]
    assert loaded[1].backends == (b1, b2)
    assert loaded[1].health_check == hc and loaded[1].session_persistence == sp
    assert loaded[1].revision == 2
    # snapshots never show timestamps, so the bulk load skips them; API reads keep them
    assert loaded[1].created_at is None
    full = store.read(lambda r: r.load_proxies(["f" * 32]))
    assert full[0].created_at is not None and full[0].updated_at is not None
    assert [p.id for p in store.load_proxies(["f" * 32, "0" * 32])] == ["f" * 32]


def test_changed_proxy_ids_covers_creates_backend_edits_and_deletes(store: Store) -> None:
    _add_project(store)
    _add_proxy(store, _proxy("a" * 32, "a.example.org"))
    start = _add_proxy(store, _proxy("b" * 32, "b.example.org"))
    with store.transaction("test") as tx:
        tx.insert_backend("a" * 32, Backend(id="9" * 32, address="10.0.0.9", port=80))
        tx.touch_proxy("a" * 32)
        tx.record(
            kind="backend", action="create", object_id="9" * 32, project="alpha", proxy_id="a" * 32
        )
    with store.transaction("test") as tx:
        tx.delete_proxy("b" * 32)
        tx.record(
            kind="proxy", action="delete", object_id="b" * 32, project="alpha", proxy_id="b" * 32
        )
    assert store.changed_proxy_ids(start) == (start + 2, {"a" * 32, "b" * 32})
    assert store.changed_proxy_ids(start + 2) == (start + 2, set())
    assert [p.id for p in store.load_proxies()] == ["a" * 32]


def test_commit_listeners_get_each_new_revision(store: Store) -> None:
    seen: list[int] = []
    store.add_commit_listener(seen.append)
    _add_project(store, "alpha")
    _add_project(store, "beta")
    assert seen == [1, 2]


def test_data_and_revision_survive_a_restart(store_url: str) -> None:
    first = open_store(store_url)
    _add_project(first)
    _add_proxy(
        first, _proxy("a" * 32, "a.example.org", Backend(id="1" * 32, address="h.x", port=1))
    )
    first.close()
    second = open_store(store_url)
    try:
        assert second.current_revision() == 2
        assert second.load_proxies()[0].backends[0].address == "h.x"
        _add_project(second, "beta")
        assert second.current_revision() == 3
    finally:
        second.close()


def test_concurrent_writers_never_lose_a_revision(store: Store) -> None:
    writers, per_writer = 6, 10
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(per_writer):
                _add_project(store, f"p{n}-{i}")
        except BaseException as err:  # surfaced in the main thread below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = writers * per_writer
    assert store.current_revision() == total
    revisions = [c.revision for c in store.read(lambda r: r.list_changes(project=None, limit=1000))]
    assert sorted(revisions) == list(range(1, total + 1))


def test_listen_reports_writes_made_through_another_store(store_url: str) -> None:
    watcher_store, writer = open_store(store_url), open_store(store_url)
    seen: list[int] = []
    event = threading.Event()

    def on_revision(rev: int) -> None:
        seen.append(rev)
        if rev >= 1:
            event.set()

    stop = watcher_store.listen(on_revision, poll_interval=0.05)
    try:
        _add_project(writer)
        assert event.wait(5)
        assert seen[-1] == 1
    finally:
        stop()
        watcher_store.close()
        writer.close()


@pytest.mark.postgres
def test_listen_works_through_a_multi_host_url(postgres_url: str) -> None:
    """A primary and its replica in one URL (docs/ha.md): the notification connection
    must try the hosts as the engine does. The first host here refuses connections; the
    poll is too slow to hide a LISTEN connection that fails."""
    server = sa.make_url(_fresh_pg_database(postgres_url))
    closed = free_port()
    url = (
        f"postgresql+psycopg://postgres@/{server.database}?host=127.0.0.1:{closed}"
        f"&host={server.host}:{server.port}&target_session_attrs=read-write"
    )
    watcher_store, writer = open_store(url), open_store(url)
    event = threading.Event()
    stop = watcher_store.listen(lambda rev: rev >= 1 and event.set(), poll_interval=60)
    try:
        time.sleep(0.5)  # the watcher's first look (revision 0) comes before the write
        _add_project(writer)
        assert event.wait(5), "no notification through the multi-host URL"
    finally:
        stop()
        watcher_store.close()
        writer.close()


def test_an_unreachable_database_is_a_store_error_that_names_no_server() -> None:
    """The API shows this message to any client: the database's hosts and the driver's
    text are for the operator's log, not for tenants."""
    engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    store = Store(engine)
    with pytest.raises(StoreError) as raised:
        store.current_revision()
    assert raised.value.status == 503
    assert "unavailable" in raised.value.message
    assert "127.0.0.1" not in raised.value.message and "psycopg" not in raised.value.message
    store.close()


def test_postgresql_connections_get_timeouts_unless_the_url_sets_them() -> None:
    """A database host that goes silent must not hang API calls (tests/ha shows it)."""
    from portway.store.engine import PG_TIMEOUTS, create_engine

    default = create_engine("postgresql+psycopg://u@db/portway")
    assert {k: default.url.query[k] for k in PG_TIMEOUTS} == PG_TIMEOUTS
    _, kwargs = default.dialect.create_connect_args(default.url)
    assert kwargs["tcp_user_timeout"] == PG_TIMEOUTS["tcp_user_timeout"]
    own = create_engine("postgresql+psycopg://u@db/portway?connect_timeout=9")
    assert own.url.query["connect_timeout"] == "9"


def test_open_store_rejects_unknown_schemes() -> None:
    from portway.errors import ConfigError

    with pytest.raises(ConfigError):
        open_store("mysql://x/y")


def test_sqlite_store_runs_in_wal_mode(tmp_path: object) -> None:
    store = open_store(f"sqlite:///{tmp_path}/nested/dir/p.db")
    try:
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        store.close()


def test_change_feed_bounds_past_bigint_are_empty_not_an_overflow(store: Store) -> None:
    _add_project(store)
    big = 2**63
    for since, limit in ((big, 100), (10**30, 100), (-(10**30), 100), (0, big), (0, 0)):
        found = store.read(
            lambda r, s=since, n=limit: r.list_changes(project=None, since=s, limit=n)
        )
        expected = 1 if since < big and limit > 0 else 0
        assert len(found) == expected, (since, limit)
