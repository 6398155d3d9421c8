"""PostgreSQL stops under a running node: traffic goes on with the last snapshot, /healthz
stays ready, API writes answer 503 with a clear message (never a 500, never a hang), and
once the database is back the node writes and routes again by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _fresh_pg_database
from tests.integration.harness import (
    Backend,
    Portway,
    create_project_and_proxy,
    wait_routed,
)
from tests.integration.test_tier import make_key
from tests.pg import PostgresCluster

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    pg = PostgresCluster()
    pg.start()
    yield pg
    pg.remove()


def test_a_node_serves_through_a_store_outage_and_recovers_by_itself(
    tmp_path: Path, cluster: PostgresCluster, backends: list[Backend]
) -> None:
    backend = backends[0]
    key = tmp_path / "secret.key"
    make_key(key)
    url = _fresh_pg_database(cluster.url)
    pw = Portway(tmp_path / "data", extra=["--store", url, "--secret-key-file", str(key)])
    pw.start()
    try:
        create_project_and_proxy(pw, "outage", "before.outage.test", [backend.port])
        wait_routed(pw, "before.outage.test")
        cluster.stop()

        assert pw.get("before.outage.test").status_code == 200
        assert pw.api("GET", "/healthz").status_code == 200
        body = {"proxy": {"hostname": "during.outage.test", "backends": []}}
        started = time.monotonic()
        r = pw.api("POST", "/v1/outage/proxies", json=body)
        took = time.monotonic() - started
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == 503 and "store" in error["message"].lower(), error
        assert took < 8, f"the write waited {took:.1f}s for a database that is gone"
        assert pw.get("before.outage.test").status_code == 200

        cluster.start()
        deadline = time.monotonic() + 30
        while True:
            body = {
                "proxy": {
                    "hostname": "after.outage.test",
                    "backends": [{"address": "127.0.0.1", "port": backend.port}],
                }
            }
            r = pw.api("POST", "/v1/outage/proxies", json=body)
            if r.status_code == 201:
                break
            assert r.status_code == 503, r.text
            assert time.monotonic() < deadline, r.text
            time.sleep(0.2)
        wait_routed(pw, "after.outage.test", timeout=10)
    finally:
        pw.stop()
