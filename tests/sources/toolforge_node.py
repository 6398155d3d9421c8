"""A Toolforge node for end-to-end tests, without ``portway serve``: a real store and
Service, the 8282 listener over the service-backed ToolRoutes, the reconciler that turns
store revisions into snapshots, a real DataPlane with tool routing, and /list. The
control-process parts share one event loop on a thread, as in ``portway serve``."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx

from portway.model import TlsSettings
from portway.model.backend_policy import BackendPolicy
from portway.reconciler.reconciler import Reconciler
from portway.router import Snapshot
from portway.router.tools import ToolDomains
from portway.service import Service
from portway.sources.registration import ListenerSettings, RegistrationListener
from portway.sources.tool_list import ToolList
from portway.sources.tool_service import ServiceToolRoutes
from portway.store import open_store
from tests.conftest import TEST_POLICY
from tests.dataplane.conftest import FAST, ProxyRunner
from tests.http_server import TestHTTPServer

CANONICAL = "toolforge.org"
LEGACY = "tools.wmflabs.org"


class ToolServer:
    """A tool's own HTTP server: answers ``<name> <path>`` and remembers the headers."""

    def __init__(self, name: str) -> None:
        seen: list[dict[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                seen.append({"path": self.path, **dict(self.headers.items())})
                body = f"{name} {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.seen = seen
        self.server = TestHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ToolforgeNode:
    def __init__(
        self,
        data_dir: Path,
        identd_port: int,
        *,
        default_backend: str | None = None,
        policy: BackendPolicy = TEST_POLICY,
    ) -> None:
        self.store = open_store(f"sqlite:///{data_dir / 'portway.db'}")
        self.service = Service(self.store, backend_policy=policy)
        domains = ToolDomains.build(
            CANONICAL, legacy=LEGACY, default_backend=default_backend, https=False
        )
        self.dataplane = ProxyRunner(dataclasses.replace(FAST, toolforge=domains))
        self.published = threading.Event()
        self.reconciler = Reconciler(self.store, self._publish, poll_interval=0.5)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        routes = ServiceToolRoutes(
            self.service, source="toolforge", canonical_domain=CANONICAL, tls=TlsSettings()
        )
        listener = RegistrationListener(
            routes, ListenerSettings(ident_port=identd_port, idle_timeout=2.0)
        )
        self.tool_list = ToolList(self._snapshot, CANONICAL)
        self.call(self._start(listener))

    async def _start(self, listener: RegistrationListener) -> None:
        self.reconciler.build_initial()
        self._tasks = [asyncio.create_task(self.reconciler.run())]
        self.registration = await listener.serve("127.0.0.1", 0)
        self.listing = await self.tool_list.serve("127.0.0.1", 0)
        self.registration_port = self.registration.sockets[0].getsockname()[1]
        self.list_port = self.listing.sockets[0].getsockname()[1]

    def _snapshot(self) -> Snapshot:
        snapshot = self.reconciler.snapshot
        assert snapshot is not None
        return snapshot

    def _publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        # The data plane runs on its own loop (as a worker would): hand it over there.
        self.dataplane.loop.call_soon_threadsafe(self.dataplane.dp.apply, snapshot)
        self.published.set()

    def call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=30)

    def get(self, host: str, path: str = "/") -> httpx.Response:
        url = f"http://127.0.0.1:{self.dataplane.port}{path}"
        return httpx.get(url, headers={"Host": host}, timeout=5)

    def wait_for(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            time.sleep(0.02)

    def listed(self) -> Any:
        return httpx.get(f"http://127.0.0.1:{self.list_port}/list", timeout=5).json()

    def stop(self) -> None:
        async def shutdown() -> None:
            self.registration.close()
            self.listing.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        self.dataplane.stop()
        self.store.close()
