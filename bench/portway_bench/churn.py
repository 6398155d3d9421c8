"""Change propagation: API changes at a fixed rate while wrk loads the data plane.

Each change creates proxy ``c<i>.bench.test`` through the API; a prober then asks the data
plane for that host until it answers 200. API→routed latency runs from the moment the
API acknowledged the change to the first routed response.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx


async def _one(
    api: httpx.AsyncClient, plane: httpx.AsyncClient, i: int, origin: int, timeout: float
) -> tuple[str, float]:
    host = f"c{i}.bench.test"
    body = {"proxy": {"hostname": host, "backends": [{"address": "127.0.0.1", "port": origin}]}}
    try:
        r = await api.post("/v1/bench/proxies", json=body)
    except httpx.HTTPError:
        return "api_failed", 0.0
    if r.is_error:
        return "api_failed", 0.0
    acked = time.monotonic()
    while time.monotonic() - acked < timeout:
        try:
            probe = await plane.get("/", headers={"Host": host})
            if probe.status_code == 200:
                return "routed", time.monotonic() - acked
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.005)
    return "not_routed", timeout


async def churn(
    ports: dict[str, int], token: str, rate: float, seconds: float, timeout: float = 10.0
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=200)
    async with (
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports['api']}",
            headers={"X-Auth-Token": token},
            timeout=10,
            limits=limits,
        ) as api,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports['http']}", timeout=2, limits=limits
        ) as plane,
    ):
        tasks = []
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            # A fixed schedule, not "one after the other": a slow API shows as latency.
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(_one(api, plane, i, ports["origin"], timeout)))
        outcomes = await asyncio.gather(*tasks)
        server = await server_side(api)
    latencies = sorted(lat for kind, lat in outcomes if kind == "routed")
    return {
        "changes": len(outcomes),
        "routed": len(latencies),
        "api_failed": sum(kind == "api_failed" for kind, _ in outcomes),
        "not_routed_in_s": timeout,
        "not_routed": sum(kind == "not_routed" for kind, _ in outcomes),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(_p99(latencies) * 1000, 1) if latencies else None,
        "server": server,
    }


async def server_side(api: httpx.AsyncClient) -> dict[str, Any]:
    """The node's own figure, from its /metrics (admin token): change heard → applied by
    every serving process, as the bucket bounds the median and the 99th percentile fall
    under. A prober in this one Python process, polling hundreds of hosts under load,
    adds its own queueing to what it measures; the node's clock does not."""
    r = await api.get("/metrics")
    buckets: list[tuple[float, float]] = []
    for line in r.text.splitlines():
        if line.startswith("portway_change_applied_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0.0

    def under(q: float) -> float | None:
        for bound, count in buckets:
            if total and count >= q * total:
                return bound * 1000
        return None

    return {"count": int(total), "p50_le_ms": under(0.5), "p99_le_ms": under(0.99)}


def _p99(sorted_values: list[float]) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * 0.99))]
