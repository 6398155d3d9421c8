"""``portway serve --workers 2`` with client limits and a node-wide quota, end to end:
429 for a client over its rate while another passes, 403 for a banned range, both in
/metrics, and a create over ``--quota-proxies`` refused with the quota's figures; and
the node's and a proxy's limits on ``--dataplane haproxy``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import (
    Backend,
    Portway,
    create_project_and_proxy,
    start_backend,
    wait_routed,
)


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = start_backend("b")
    yield b
    b.stop()


def get_from(pw: Portway, source: str, host: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(pw.http_url, headers={"Host": host})


def test_limits_and_quotas_through_serve_with_two_workers(tmp_path: Path, backend: Backend) -> None:
    extra = ["--deny-client", "127.0.0.5/32", "--quota-proxies", "1"]
    pw = Portway(tmp_path / "data", workers=2, extra=extra)
    pw.start()
    try:
        limits = {"limits": {"rate": 0.2, "burst": 2}}  # each worker: 0.1/s, burst 1
        create_project_and_proxy(pw, "alpha", "app.example.org", [backend.port], **limits)
        wait_routed(pw, "app.example.org")
        statuses = [get_from(pw, "127.0.0.2", "app.example.org").status_code for _ in range(6)]
        assert statuses.count(200) <= 2 and 429 in statuses, statuses
        refused = get_from(pw, "127.0.0.2", "app.example.org")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert get_from(pw, "127.0.0.3", "app.example.org").status_code == 200
        banned = get_from(pw, "127.0.0.5", "app.example.org")
        assert banned.status_code == 403 and "403 Forbidden" in banned.text

        body = {"proxy": {"hostname": "two.example.org"}}
        over = pw.api("POST", "/v1/alpha/proxies", json=body)
        assert over.status_code == 403
        assert over.json()["error"]["quota"] == {"name": "proxies", "limit": 1, "in_use": 1}
        quota = pw.api("GET", "/v1/quotas/alpha").json()["quota"]
        assert quota["limits"]["proxies"] == 1 and quota["own"]["proxies"] is None

        metrics = ""
        for _ in range(50):  # workers push their figures every second
            metrics = httpx.get(f"{pw.metrics_url}/metrics", timeout=5).text
            if 'reason="deny"' in metrics and 'reason="rate"' in metrics:
                break
            time.sleep(0.1)
        assert 'portway_requests_refused_total{project="alpha",reason="deny"} 1' in metrics
        assert 'portway_requests_refused_total{project="alpha",reason="rate"}' in metrics
    finally:
        pw.stop()


def test_node_wide_and_proxy_limits_through_serve_on_haproxy(
    tmp_path: Path, backend: Backend
) -> None:
    """``--dataplane haproxy`` with ``--rate-limit``/``--deny-client``: the node's rate on
    a proxy without its own, the proxy's own rate on another, the node's ban on both."""
    from tests.drivers.haproxy_runner import HAPROXY

    extra = ["--dataplane", "haproxy", "--haproxy-binary", HAPROXY]
    extra += ["--haproxy-prefix", str(tmp_path / "hap")]
    extra += ["--rate-limit", "0.5", "--rate-burst", "2", "--deny-client", "127.0.0.5/32"]
    pw = Portway(tmp_path / "data", extra=extra)
    pw.start()
    try:
        create_project_and_proxy(pw, "alpha", "node.example.org", [backend.port])
        own = {"limits": {"rate": 100, "burst": 10}}
        create_project_and_proxy(pw, "beta", "own.example.org", [backend.port], **own)
        wait_routed(pw, "node.example.org", timeout=20)
        wait_routed(pw, "own.example.org", timeout=20)
        node = [get_from(pw, "127.0.0.2", "node.example.org") for _ in range(3)]
        assert [r.status_code for r in node] == [200, 200, 429]
        assert node[2].headers["Retry-After"] == "4" and "429 Too Many" in node[2].text
        assert get_from(pw, "127.0.0.3", "node.example.org").status_code == 200
        assert [get_from(pw, "127.0.0.2", "own.example.org").status_code for _ in range(5)] == [
            200
        ] * 5
        for host in ("node.example.org", "own.example.org"):
            banned = get_from(pw, "127.0.0.5", host)
            assert banned.status_code == 403 and "403 Forbidden" in banned.text
    finally:
        pw.stop()
