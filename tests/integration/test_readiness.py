"""``/healthz`` is what keepalived and outside load balancers ask before they send a node
traffic: it says ready only once this node's data plane accepts connections and serves
the store's current revision, and says why not before that."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import Portway


@pytest.mark.parametrize("workers", [0, 1])
def test_healthz_is_ready_only_once_the_data_plane_accepts(tmp_path: Path, workers: int) -> None:
    pw = Portway(tmp_path / "data", workers=workers)
    pw.launch()
    try:
        deadline = time.monotonic() + 30
        not_ready: list[dict[str, object]] = []
        while True:
            assert time.monotonic() < deadline, pw.output
            try:
                r = httpx.get(f"{pw.api_url}/healthz", timeout=1)
            except httpx.HTTPError:
                time.sleep(0.005)
                continue
            if r.status_code == 200:
                break
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["status"] == "not-ready" and body["reasons"], body
            not_ready.append(body)
            time.sleep(0.005)
        # The very moment it says ready, the data plane must take a connection.
        with socket.create_connection(("127.0.0.1", pw.http_port), timeout=1):
            pass
        body = r.json()
        assert body["status"] == "ok" and body["reasons"] == []
        assert body["revision"]["applied"] == body["revision"]["store"] >= 1
    finally:
        pw.stop()
