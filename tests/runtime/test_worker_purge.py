"""Purges reach every worker through the snapshot pipe: two real worker processes, each
with its own cache filled from a real origin, and one purge empties both."""

from __future__ import annotations

import asyncio

import httpx
from tests.conftest import TEST_POLICY
from tests.dataplane.cache_origin import CacheOrigin, cache_origin
from tests.runtime.test_worker_pool import free_port, wait_applied

from portway.cache.store import Purge
from portway.dataplane.settings import DataPlaneSettings
from portway.model import Backend, CacheSettings, Proxy
from portway.router import RouteTable, Snapshot
from portway.runtime.config import Listen
from portway.runtime.workers import WorkerPool

__all__ = ["cache_origin"]


def test_a_purge_empties_every_workers_cache_and_counts_what_went(
    cache_origin: CacheOrigin,
) -> None:
    cache_origin.add("/static/a", headers={"Cache-Control": "max-age=600"})
    backend = Backend(id="o", address="127.0.0.1", port=cache_origin.port)
    proxy = Proxy(
        id="px",
        project="alpha",
        hostname="cache.example.org",
        backends=(backend,),
        cache=CacheSettings(enabled=True),
    )
    listen = Listen(host="127.0.0.1", port=free_port())

    async def main() -> tuple[int, int, list[str]]:
        pool = WorkerPool(
            2, listen, DataPlaneSettings(), drain_timeout=1, backend_policy=TEST_POLICY
        )
        await pool.start(Snapshot(version=1, routes=RouteTable.build([proxy])))
        try:
            await wait_applied(pool, 1)
            headers = {"Host": "cache.example.org"}
            # New connections spread over both workers (SO_REUSEPORT): fill both caches.
            for _ in range(40):
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listen.port}") as c:
                    await c.get("/static/a", headers=headers)
            filled = cache_origin.count("/static/a")
            gone = await pool.purge("px", Purge(prefixes=(b"/static/",)))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listen.port}") as c:
                after = await c.get("/static/a", headers=headers)
            return filled, gone, [after.headers["cache-status"]]
        finally:
            await pool.close()

    filled, gone, after = asyncio.run(main())
    assert filled == 2, "each worker fetched once and then served its own copy"
    assert gone == 2, "one entry in each worker's cache"
    assert after[0].startswith("portway; fwd=uri-miss")
