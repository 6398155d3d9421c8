"""``/healthz`` is what keepalived and outside load balancers ask before they send a node
traffic: it says ready only once this node's data plane accepts connections and serves
the store's current revision, and says why not before that."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from portway.observability.readiness import LAG_ALLOWED
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


def _workers(pid: int) -> list[int]:
    """The worker processes of ``portway serve`` ``pid`` (not multiprocessing's resource
    tracker, also its child)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    out = []
    for child in children:
        with open(f"/proc/{child}/cmdline", "rb") as f:
            if b"resource_tracker" not in f.read():
                out.append(child)
    return out


def test_a_worker_that_stops_applying_makes_the_node_unready_after_the_allowance(
    tmp_path: Path,
) -> None:
    """A change on its way is no reason to leave rotation; a worker that holds one back
    for longer than LAG_ALLOWED is, and the node is ready again once it catches up."""
    pw = Portway(tmp_path / "data", workers=1)
    pw.start()
    try:
        assert pw.proc is not None
        r = pw.api("POST", "/v1/projects", json={"project": {"name": "alpha"}})
        assert r.status_code == 201, r.text
        (worker,) = _workers(pw.proc.pid)
        os.kill(worker, signal.SIGSTOP)
        try:
            body = {"proxy": {"hostname": "held.alpha.example.org", "backends": []}}
            assert pw.api("POST", "/v1/alpha/proxies", json=body).status_code == 201
            started = time.monotonic()
            first = httpx.get(f"{pw.api_url}/healthz", timeout=1)
            assert first.status_code == 200, first.text  # within the allowance
            while True:
                r = httpx.get(f"{pw.api_url}/healthz", timeout=1)
                if r.status_code == 503:
                    break
                assert time.monotonic() - started < LAG_ALLOWED + 5, r.text
                time.sleep(0.05)
            assert time.monotonic() - started >= LAG_ALLOWED - 0.2
            assert any("the data plane serves revision" in x for x in r.json()["reasons"])
        finally:
            os.kill(worker, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while httpx.get(f"{pw.api_url}/healthz", timeout=1).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        pw.stop()
