"""OpenShift figures (issue 14): routing events applied per second, and event → routed.

    cd bench && ../.venv/bin/python -m portway_bench.openshift [--events 2000] [--latency 200]

Everything is real and on 127.0.0.1: Debian's ActiveMQ (started here, persistent store in
a temporary directory, as the tests run it), one ``portway serve`` (SQLite store) with
``--openshift-stomp``, and one backend HTTP server.

1. **Applied per second.** The node is stopped, ``--events`` messages of the restart
   tests' seeded stream (create, endpoints, aliases, removals, 3 % malformed) wait in
   the queue, the node starts, and the clock runs from the source being up until the
   queue is empty: every message handled, committed and acknowledged, one at a time.
2. **Event → routed.** ``--latency`` times: an ``add_public_endpoint`` for a new
   application is published (with its receipt awaited) and its ``ha-`` hostname is
   asked for on the data plane until it answers 200; the time from the publish to that
   answer (the first poll of a host answers 404, the polls are back to back).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the test helpers: the broker and the node as a process

from tests.integration.harness import Portway, start_backend  # noqa: E402
from tests.sources.activemq import Broker, Publisher  # noqa: E402
from tests.sources.spi_events import ruby_yaml  # noqa: E402
from tests.sources.spi_stream import stream  # noqa: E402

DOMAIN = "bench.test"


def _node(data_dir: Path, url: str) -> Portway:
    return Portway(
        data_dir,
        extra=["--openshift-stomp", url, "--openshift-domain", DOMAIN,
               "--backend-allow", "10.0.0.0/8"],
    )  # fmt: skip


def _source_up(node: Portway) -> bool:
    health = httpx.get(f"{node.api_url}/healthz", timeout=5).json()
    return bool(health["sources"].get("openshift") == "up")


def applied_per_second(broker: Broker, root: Path, events: int) -> dict[str, Any]:
    queue = "/queue/bench-backlog"
    bodies, _, _ = stream(events, seed=2026, apps=50)
    broker.publish(queue, bodies)
    node = _node(root / "backlog", broker.url(queue))
    node.start()
    try:
        while not _source_up(node):
            time.sleep(0.01)
        began = time.monotonic()
        while broker.depth(queue) != 0:
            time.sleep(0.2)
        seconds = time.monotonic() - began
    finally:
        node.stop()
    return {"events": events, "seconds": round(seconds, 2), "per_second": round(events / seconds)}


def event_to_routed(broker: Broker, root: Path, count: int) -> dict[str, Any]:
    queue = "/queue/bench-latency"
    backend = start_backend("b")
    node = _node(root / "latency", broker.url(queue))
    node.start()
    times: list[float] = []
    try:
        while not _source_up(node):
            time.sleep(0.01)
        with Publisher(broker.port) as publisher, httpx.Client(timeout=5) as client:
            for i in range(count):
                host = f"ha-app{i}-bench.{DOMAIN}"
                body = ruby_yaml(_endpoint(f"app{i}", backend.port))
                began = time.monotonic()
                publisher.send(queue, body)
                while client.get(node.http_url, headers={"Host": host}).status_code != 200:
                    if time.monotonic() - began > 30:
                        raise RuntimeError(f"{host} not routed within 30 s")
                times.append(time.monotonic() - began)
    finally:
        node.stop()
        backend.stop()
    times.sort()
    return {
        "events": count,
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 1),
        "max_ms": round(times[-1] * 1000, 1),
    }


def _endpoint(app: str, port: int) -> dict[str, Any]:
    return {
        "action": "add_public_endpoint",
        "app_name": app,
        "namespace": "bench",
        "gear_id": f"{port:024x}",
        "public_port_name": "haproxy-1.4",
        "public_address": "127.0.0.1",
        "public_port": port,
        "protocols": ["http"],
        "types": ["load_balancer"],
        "mappings": [{"frontend": "", "backend": ""}],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="portway_bench.openshift", description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="portway-bench-openshift-") as tmp:
        root = Path(tmp)
        broker = Broker(root / "activemq")
        broker.start()
        try:
            result = {
                "applied": applied_per_second(broker, root, args.events),
                "event_to_routed": event_to_routed(broker, root, args.latency),
            }
        finally:
            broker.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
