"""Metrics, access log and connection count, read from a live data plane."""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
import socket
import time
from collections.abc import Callable

import httpx

from portway.observability.access_log import AccessLog
from tests.dataplane.conftest import FAST, Origin, ProxyRunner, proxy_for

HOST = {"Host": "app.example.org"}


def test_metrics_count_each_finished_request_once(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    with httpx.Client(timeout=5) as client:
        for _ in range(3):
            client.get(f"http://127.0.0.1:{runner.port}/", headers=HOST)
        client.get(f"http://127.0.0.1:{runner.port}/", headers={"Host": "nope.example.org"})
    metrics = runner.on_loop(lambda: runner.dp.metrics.export())
    assert metrics["requests"][("p", "app.example.org/", "2xx")] == 3
    assert metrics["requests"][("", "", "4xx")] == 1
    assert sum(metrics["latency"][("p", "")][:-1]) == 3  # histograms are per project


def test_access_log_writes_one_json_line_per_request(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    stream = io.StringIO()
    runner = make_proxy(FAST, AccessLog(stream, flush_interval=0.01))
    runner.route(proxy_for("app.example.org", origin.backend()))
    with httpx.Client(timeout=5) as client:
        client.post(f"http://127.0.0.1:{runner.port}/a?b=1", headers=HOST, content=b"12345")
        client.get(f"http://127.0.0.1:{runner.port}/missing", headers={"Host": "x.example"})
    time.sleep(0.1)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    ok, missing = lines
    assert ok["project"] == "p" and ok["proxy"] == "app.example.org/"
    assert ok["backend"] == f"127.0.0.1:{origin.port}"
    assert (ok["method"], ok["path"], ok["status"]) == ("POST", "/a?b=1", 200)
    assert ok["bytes_in"] == 5 and ok["bytes_out"] > len(b"one /a?b=1 5")
    assert ok["client"] == "127.0.0.1"
    assert 0 <= ok["upstream_ms"] <= ok["duration_ms"]
    assert isinstance(ok["time"], float)
    assert missing["status"] == 404 and missing["backend"] is None


def test_open_connections_counts_live_client_connections(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    socks = [socket.create_connection(("127.0.0.1", runner.port)) for _ in range(3)]

    def count() -> int:
        return int(runner.on_loop(lambda: runner.dp.open_connections))

    deadline = time.monotonic() + 2
    while count() != 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count() == 3
    for sock in socks:
        sock.close()
    while count() != 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count() == 0


def test_access_log_names_the_client_behind_a_trusted_proxy(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    """Behind a trusted proxy the log's ``client`` is the address Portway trusts (as
    its limits and X-Forwarded-For see it), and ``peer`` the proxy; an untrusted peer's
    X-Forwarded-For is only its claim, so the peer stays the client."""
    stream = io.StringIO()
    settings = dataclasses.replace(FAST, trusted_proxies=("127.0.0.2/32",))
    runner = make_proxy(settings, AccessLog(stream, flush_interval=0.01))
    runner.route(proxy_for("app.example.org", origin.backend()))
    claim = {"Host": "app.example.org", "X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
    for source in ("127.0.0.2", "127.0.0.3"):
        conn = http.client.HTTPConnection("127.0.0.1", runner.port, source_address=(source, 0))
        conn.request("GET", "/", headers=claim)
        assert conn.getresponse().status == 200
        conn.close()
    time.sleep(0.1)
    trusted, untrusted = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (trusted["client"], trusted["peer"]) == ("198.51.100.7", "127.0.0.2")
    assert untrusted["client"] == "127.0.0.3" and "peer" not in untrusted
