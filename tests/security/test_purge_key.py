"""Issue 12: a proxy's ``purge.key`` (the secret that opens the data plane's ``PURGE``)
is a secret. Whoever reads the API (a reader of the project: the change log) or the
database (a dump, a backup) must not learn it; only a salted hash is kept."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from portway.model import Backend, CacheSettings, Proxy
from portway.model.purge_key import matches, parsed
from portway.reconciler.builder import full_snapshot
from portway.runtime.worker_messages import full_message
from portway.service import Actor, Service
from portway.store import open_store
from portway.store.engine import MIGRATIONS
from portway.store.schema import changes, proxies
from tests.api.conftest import Api
from tests.conftest import TEST_POLICY
from tests.dataplane.cache_origin import CacheOrigin, cache_origin, get
from tests.dataplane.conftest import ProxyRunner, proxy_for

__all__ = ["cache_origin"]  # the fixture, imported so this module's tests can use it
KEY = "0123456789abcdef-the-purge-secret"
HOST = "cache.example.org"  # the Host that cache_origin.get sends


def _cached_proxy(api: Api) -> Any:
    body = {
        "hostname": "cache.alpha.example.org",
        "cache": {"enabled": True},
        "purge": {"key": KEY},
    }
    created = api.client.post("/v1/alpha/proxies", json={"proxy": body}, headers=api.member)
    assert created.status_code == 201, created.text
    return created.json()["proxy"]


def test_no_api_answer_a_reader_gets_shows_the_purge_key(api: Api) -> None:
    proxy = _cached_proxy(api)
    assert proxy["purge"]["key_set"] is True and "key" not in proxy["purge"]
    patched = api.client.patch(
        f"/v1/alpha/proxies/{proxy['id']}",
        json={"proxy": {"purge": {"key": KEY + "-2", "allow_from": []}}},
        headers=api.member,
    )
    assert patched.status_code == 200, patched.text
    seen = [
        api.client.get(f"/v1/alpha/proxies/{proxy['id']}", headers=api.reader).text,
        api.client.get("/v1/alpha/proxies", headers=api.reader).text,
        api.client.get("/v1/alpha/changes", headers=api.reader).text,
        api.client.get("/v1/alpha/changes", headers=api.admin).text,
        patched.text,
    ]
    for text in seen:
        assert KEY not in text, text
    log = api.client.get("/v1/alpha/changes", headers=api.reader).json()["changes"]
    after = [c["after"] for c in log if c["kind"] == "proxy" and c["after"]]
    assert after and all(a["purge"] == {"allow_from": [], "key_set": True} for a in after)


def test_the_database_holds_no_purge_key_in_clear(api: Api) -> None:
    _cached_proxy(api)
    with api.service.store.engine.connect() as conn:
        stored = [json.dumps(r) for r in conn.execute(sa.select(proxies.c.purge)).scalars()]
        logged = [
            json.dumps([row.before, row.after])
            for row in conn.execute(sa.select(changes.c.before, changes.c.after))
        ]
    assert stored and not any(KEY in text for text in stored + logged)


def test_the_snapshot_sent_to_the_workers_carries_only_the_hash(api: Api) -> None:
    _cached_proxy(api)
    loaded = api.service.store.read(lambda r: r.load_proxies())
    message = pickle.dumps(full_message(full_snapshot(1, loaded, 0.0)))
    assert KEY.encode() not in message
    (proxy,) = loaded
    assert proxy.purge.key_hash is not None
    assert matches(*parsed(proxy.purge.key_hash), KEY.encode())


# -- keys stored in clear by the code before migration 0016 ---------------------------

OLD_KEY = "sixteen-char-key"  # the old rule's shortest: it must keep working


def _old_clear_key(store_url: str) -> None:
    """A store as the code before 0016 left it: the key in clear, in the proxy's row and
    in the change log's copy of it (what a reader of /changes got)."""
    store = open_store(store_url)
    service = Service(store, backend_policy=TEST_POLICY)
    admin = Actor.system("test")
    service.create_project(admin, "alpha")
    draft = Proxy(id="", project="", hostname=HOST, cache=CacheSettings(enabled=True))
    service.create_proxy(admin, "alpha", draft)
    store.close()
    engine = sa.create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0014")
        clear = {"allow_from": [], "key": OLD_KEY}
        conn.execute(sa.update(proxies).values(purge=clear))
        for number, after in conn.execute(sa.select(changes.c.revision, changes.c.after)).all():
            if isinstance(after, dict) and "purge" in after:
                after["purge"] = clear
                update = sa.update(changes).where(changes.c.revision == number)
                conn.execute(update.values(after=after))
    with engine.connect() as conn:
        assert OLD_KEY in json.dumps(_every_json(conn))  # the starting point is clear
    engine.dispose()


def _every_json(conn: sa.Connection) -> list[Any]:
    found: list[Any] = list(conn.execute(sa.select(proxies.c.purge)).scalars())
    found += [list(r) for r in conn.execute(sa.select(changes.c.before, changes.c.after))]
    return found


def test_a_clear_key_left_by_the_old_code_is_hashed_and_still_opens_purge(
    store_url: str, make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    _old_clear_key(store_url)
    store = open_store(store_url)  # migrates to head
    try:
        with store.engine.connect() as conn:
            assert OLD_KEY not in json.dumps(_every_json(conn))
        (stored,) = store.read(lambda r: r.load_proxies())
    finally:
        store.close()
    assert stored.purge.key_hash is not None and stored.purge.key_hash.startswith("sha256$")
    runner = make_proxy()
    backend = Backend(id="o", address="127.0.0.1", port=cache_origin.port)
    runner.route(proxy_for(HOST, backend, cache=stored.cache, purge=stored.purge))
    cache_origin.add("/x", headers={"Cache-Control": "max-age=60"})
    get(runner.port, "/x")
    assert get(runner.port, "/x", {"X-Purge-Key": OLD_KEY + "!"}, method="PURGE")[0] == 403
    assert get(runner.port, "/x", {"X-Purge-Key": OLD_KEY}, method="PURGE")[0] == 200
    assert get(runner.port, "/x")[1]["cache-status"].startswith("portway; fwd=uri-miss")
