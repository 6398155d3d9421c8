"""Load many proxies straight into a fresh Portway store, before ``portway serve`` starts.

Creating 100 000 proxies one API call at a time takes about eight minutes on the
reference machine (~200/s), which would dominate the route-scale scenario without
telling anything about the data plane. The rows are written with Portway's own store
converters, so they are exactly what the API would have written; the start-up that
follows then measures the real cost of building a 100 000-proxy snapshot.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import sqlalchemy as sa

from portway.model import Backend, Proxy
from portway.store import open_store
from portway.store import rows as store_rows
from portway.store.schema import backends, projects, proxies

PROJECT = "bench"
CHUNK = 5_000


def preload(data_dir: Path, hosts: list[str], origin_port: int) -> None:
    """Create project ``bench`` and one proxy per host, each with the origin as backend."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{(data_dir / 'portway.db').resolve()}")
    now = dt.datetime.now(dt.UTC)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.insert(projects), [{"name": PROJECT, "created_at": now}])
            for start in range(0, len(hosts), CHUNK):
                proxy_rows, backend_rows = [], []
                for host in hosts[start : start + CHUNK]:
                    proxy = Proxy(
                        id=uuid.uuid4().hex,
                        project=PROJECT,
                        hostname=host,
                        backend_port=origin_port,
                        created_at=now,
                        updated_at=now,
                    )
                    backend = Backend(id=uuid.uuid4().hex, address="127.0.0.1", port=origin_port)
                    proxy_rows.append(store_rows.proxy_to_row(proxy))
                    backend_rows.append(store_rows.backend_to_row(backend, proxy.id))
                conn.execute(sa.insert(proxies), proxy_rows)
                conn.execute(sa.insert(backends), backend_rows)
    finally:
        store.close()
