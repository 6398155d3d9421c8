"""Toolforge figures (issue 9): ``/list`` with many tools, and registration → routed.

    cd bench && ../.venv/bin/python -m portway_bench.toolforge [--tools 10000] [--registrations 200]

Everything runs in this process on 127.0.0.1 with a SQLite store in a temporary
directory: the service-backed ToolRoutes, the reconciler, a DataPlane on its own uvloop
thread, the /list listener and the 8282 listener (the clients prove who they are with a
token line, so no identd is needed).

1. ``--tools`` tools are written in one resync (batches of ``RESYNC_BATCH`` per
   transaction); the reconciler builds the snapshot; ``/list`` is asked once right after
   the snapshot is in force (nobody polled before, so the body is built then) and then
   ``--list-requests`` times (served from the per-snapshot cache).
2. ``--changes`` times, one tool is registered through the service while /list is being
   polled (as the reconciliation jobs do), and the first ``/list`` after the new snapshot
   is in force is timed twice: at once (``list_first_after_change_now``: the worst case,
   the body may still have to be built) and one build-ahead interval later
   (``list_first_after_change``: what a poller meets, ToolList builds ahead every 0.25 s).
3. ``--registrations`` tools register one after the other over TCP; each is timed from
   the client's send to the first 200 from the data plane for ``<tool>.<canonical>``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import uvloop

from portway.dataplane import DataPlane, DataPlaneSettings
from portway.model import Role, TlsSettings
from portway.model.backend_policy import BackendPolicy
from portway.reconciler.reconciler import Reconciler
from portway.router import Snapshot
from portway.router.tools import ToolDomains
from portway.service import Actor, Service
from portway.service.tools import ToolRouteSpec
from portway.sources.registration import ListenerSettings, RegistrationListener
from portway.sources.tool_list import ToolList
from portway.sources.tool_service import ServiceToolRoutes
from portway.store import open_store

DOMAIN = "toolforge.org"
POLICY = BackendPolicy.build(allow=["127.0.0.0/8"])


class Loop:
    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=600)


def _origin() -> int:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def _get(port: int, host: str, path: str = "/") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(1 << 20):
            data += chunk
    return int(data.split(b" ", 2)[1]), data.partition(b"\r\n\r\n")[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(value: float) -> str:
    return f"{value * 1000:.2f} ms"


class Node:
    def __init__(self, data_dir: Path) -> None:
        self.store = open_store(f"sqlite:///{data_dir / 'portway.db'}")
        self.service = Service(self.store, backend_policy=POLICY)
        self.dp_loop, self.control = Loop(), Loop()
        settings = DataPlaneSettings(toolforge=ToolDomains.build(DOMAIN, https=False))
        self.dp = DataPlane(settings, backend_policy=POLICY)
        self.dp_port = self.dp_loop.call(self._listen())
        self.applied = threading.Event()
        self.reconciler = Reconciler(self.store, self._publish, poll_interval=0.5)
        self.routes = ServiceToolRoutes(
            self.service, source="toolforge", canonical_domain=DOMAIN, tls=TlsSettings()
        )
        self.list_port = _free_port()
        self.tool_list = ToolList(self._snapshot, DOMAIN, port=self.list_port)
        self.reg_port = self.control.call(self._start())

    async def _listen(self) -> int:
        await self.dp.listen_http("127.0.0.1", 0)
        return int(self.dp.bound_ports[0])

    async def _start(self) -> int:
        self.reconciler.build_initial()
        self._task = asyncio.create_task(self.reconciler.run())
        # run(), as portway serve does: it also builds a changed body ahead of polls.
        self._list_task = asyncio.create_task(self.tool_list.run())
        listener = RegistrationListener(self.routes, ListenerSettings())
        registration = await listener.serve("127.0.0.1", 0)
        while self.tool_list.state != "up":
            await asyncio.sleep(0.01)
        return int(registration.sockets[0].getsockname()[1])

    def _snapshot(self) -> Snapshot:
        snapshot = self.reconciler.snapshot
        assert snapshot is not None
        return snapshot

    def _publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        def apply() -> None:
            self.dp.apply(snapshot)
            self.applied.set()

        self.dp_loop.loop.call_soon_threadsafe(apply)


def bench_list(node: Node, tools: int, requests: int, origin: int) -> dict[str, Any]:
    specs = [
        ToolRouteSpec(
            tool=f"tool{i:05d}",
            hostname=f"tool{i:05d}.{DOMAIN}",
            pattern=".*",
            address="127.0.0.1",
            port=origin,
        )
        for i in range(tools)
    ]
    started = time.perf_counter()
    node.service.resync_tool_routes(Actor.system("toolforge"), specs)
    written = time.perf_counter() - started
    deadline = time.monotonic() + 300
    while len(node._snapshot().routes) < tools and time.monotonic() < deadline:
        time.sleep(0.05)
    published = time.perf_counter() - started
    url = f"http://127.0.0.1:{node.list_port}/list"
    first_started = time.perf_counter()
    status, body = _get(node.list_port, "list", "/list")
    first = time.perf_counter() - first_started
    assert status == 200 and len(json.loads(body)) == tools, url
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        status, body = _get(node.list_port, "list", "/list")
        times.append(time.perf_counter() - t0)
        assert status == 200
    return {
        "tools": tools,
        "resync_write_s": round(written, 3),
        "write_to_snapshot_s": round(published, 3),
        "list_bytes": len(body),
        "list_first_ms": round(first * 1000, 2),
        "list_cached_p50_ms": round(_percentile(times, 0.5) * 1000, 2),
        "list_cached_p99_ms": round(_percentile(times, 0.99) * 1000, 2),
    }


def bench_list_after_change(node: Node, changes: int, origin: int) -> dict[str, Any]:
    """The first /list after a change, while pollers are around (see the docstring)."""
    actor = Actor.system("toolforge")
    now, later = [], []
    _get(node.list_port, "list", "/list")  # a poller is there: ToolList builds ahead
    for i in range(changes):
        for timings, wait in ((now, 0.0), (later, 0.3)):
            tool = f"chg{i:03d}{'n' if wait == 0 else 'l'}"
            spec = ToolRouteSpec(
                tool=tool, hostname=f"{tool}.{DOMAIN}", pattern=".*", address="127.0.0.1",
                port=origin,
            )  # fmt: skip
            count = len(node._snapshot().routes)
            node.service.register_tool_route(actor, spec)
            while len(node._snapshot().routes) == count:  # the new tool is in force
                time.sleep(0.001)
            time.sleep(wait)
            t0 = time.perf_counter()
            status, body = _get(node.list_port, "list", "/list")
            timings.append(time.perf_counter() - t0)
            assert status == 200 and f'"{tool}"'.encode() in body
    return {
        "changes": changes,
        "list_first_after_change_p50_ms": round(_percentile(later, 0.5) * 1000, 2),
        "list_first_after_change_p99_ms": round(_percentile(later, 0.99) * 1000, 2),
        "list_first_after_change_now_p50_ms": round(_percentile(now, 0.5) * 1000, 2),
        "list_first_after_change_now_p99_ms": round(_percentile(now, 0.99) * 1000, 2),
    }


def bench_registrations(node: Node, count: int, origin: int) -> dict[str, Any]:
    admin = Actor.system("bench")
    secrets = []
    for i in range(count):
        tool = f"reg{i:04d}"
        node.service.create_project(admin, tool)
        secrets.append((tool, node.service.create_token(admin, tool, Role.MEMBER)[1]))
    times = []
    for tool, secret in secrets:
        payload = f"token {secret}\nregister\n.*\nhttp://127.0.0.1:{origin}\n".encode()
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", node.reg_port), timeout=10) as sock:
            sock.sendall(payload)
            reply = sock.recv(1024)
        assert reply == b"ok", reply
        host = f"{tool}.{DOMAIN}"
        while _get(node.dp_port, host)[0] != 200:
            if time.perf_counter() - t0 > 30:
                raise RuntimeError(f"{tool} not routed after 30 s")
        times.append(time.perf_counter() - t0)
    return {
        "registrations": count,
        "registered_to_routed_p50_ms": round(_percentile(times, 0.5) * 1000, 2),
        "registered_to_routed_p99_ms": round(_percentile(times, 0.99) * 1000, 2),
        "registered_to_routed_mean_ms": round(statistics.mean(times) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--list-requests", type=int, default=200)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--registrations", type=int, default=200)
    args = parser.parse_args()
    origin = _origin()
    with tempfile.TemporaryDirectory() as tmp:
        node = Node(Path(tmp))
        result = bench_list(node, args.tools, args.list_requests, origin)
        result.update(bench_list_after_change(node, args.changes, origin))
        result.update(bench_registrations(node, args.registrations, origin))
        node.store.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
