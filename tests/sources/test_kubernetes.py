"""The Kubernetes watcher against an HTTPS server that speaks the real API's shapes:
a ServiceList with a resourceVersion, newline-delimited watch events, BOOKMARK, a 410
Status, bearer-token auth and a private CA (as a cluster's service account sees it)."""

from __future__ import annotations

import asyncio
import json
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme

from portway.sources.kubernetes import KubernetesSettings, KubernetesWatcher, service_route
from tests.sources.memory import MemoryRegistrar

TOKEN = "sa-token-1"
SELECTOR = "tools.wmflabs.org/webservice=true"


def service(name: str, ip: str = "10.96.0.10", port: int = 8000, **labels: str) -> dict[str, Any]:
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": f"tool-{name}",
            "resourceVersion": "1",
            "labels": {"tools.wmflabs.org/webservice": "true", **labels},
        },
        "spec": {"clusterIP": ip, "ports": [{"port": port, "protocol": "TCP"}, {"port": 9}]},
    }


class FakeApi:
    """Serves /api/v1/services: the list from ``items``, watches from ``watch_lines``
    (one queue per watch; ``None`` ends the stream, as the server's timeout does)."""

    def __init__(self, tmp: Path) -> None:
        self.items: list[dict[str, Any]] = []
        self.list_version = "100"
        self.watches: queue.Queue[queue.Queue[str | None]] = queue.Queue()
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.fail_lists = 0
        ca = trustme.CA()
        self.ca_file = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert = ca.issue_cert("127.0.0.1")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # The handshake happens in each request's thread, not in accept(): a client that
        # goes away mid-handshake must not block serve_forever (and so shutdown).
        self.server.socket = context.wrap_socket(
            self.server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"

    def new_watch(self) -> queue.Queue[str | None]:
        """The event queue of the next watch request (made before it arrives)."""
        events: queue.Queue[str | None] = queue.Queue()
        self.watches.put(events)
        return events

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                api.requests.append((url.path, query))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._json(401, {"kind": "Status", "code": 401})
                if url.path != "/api/v1/services" or query.get("labelSelector") != [SELECTOR]:
                    return self._json(404, {"kind": "Status", "code": 404})
                if query.get("watch") == ["true"]:
                    return self._watch()
                if api.fail_lists > 0:
                    api.fail_lists -= 1
                    return self._json(500, {"kind": "Status", "code": 500})
                body = {
                    "kind": "ServiceList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": api.list_version},
                    "items": api.items,
                }
                return self._json(200, body)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _watch(self) -> None:
                try:
                    events = api.watches.get(timeout=10)
                except queue.Empty:
                    events = queue.Queue()
                    events.put(None)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while (line := events.get()) is not None:
                    data = (line + "\n").encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def event(kind: str, obj: dict[str, Any]) -> str:
    return json.dumps({"type": kind, "object": obj})


class Running:
    def __init__(self, api: FakeApi, tmp: Path) -> None:
        token_file = tmp / "token"
        token_file.write_text(TOKEN + "\n")
        settings = KubernetesSettings(
            api_url=api.url, token_file=token_file, ca_file=api.ca_file, max_backoff=0.2
        )
        self.routes = MemoryRegistrar()
        self.watcher = KubernetesWatcher(self.routes, settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.task: Future[None] = asyncio.run_coroutine_threadsafe(self.watcher.run(), self.loop)

    def stop(self) -> None:
        async def cancel() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApi]:
    fake = FakeApi(tmp_path)
    yield fake
    fake.stop()


@pytest.fixture
def start(api: FakeApi, tmp_path: Path) -> Iterator[Callable[[], Running]]:
    running: list[Running] = []

    def make() -> Running:
        running.append(Running(api, tmp_path))
        return running[-1]

    yield make
    for run in running:
        run.stop()


def test_a_service_becomes_its_tools_route() -> None:
    route = service_route(service("alpha", port=8000))
    assert route is not None
    assert (route.tool, route.pattern, route.destination.text) == (
        "alpha",
        ".*",
        "http://10.96.0.10:8000",
    )
    labelled = service_route(service("beta", **{"toollabs-proxy-path": "beta-api"}))
    assert labelled is not None and labelled.pattern == "/beta-api.*"


@pytest.mark.parametrize(
    "spec",
    [{"clusterIP": "None", "ports": [{"port": 80}]}, {"clusterIP": "10.0.0.1", "ports": []}],
)
def test_headless_or_portless_services_are_not_routed(spec: dict[str, Any]) -> None:
    assert service_route({"metadata": {"name": "x"}, "spec": spec}) is None


def test_list_resyncs_then_watch_events_apply(api: FakeApi, start: Callable[[], Running]) -> None:
    api.items = [service("alpha"), service("beta", ip="10.96.0.11")]
    events = api.new_watch()
    run = start()
    eventually(lambda: set(run.routes.routes) == {"alpha", "beta"})
    eventually(lambda: run.watcher.state == "up")
    events.put(event("ADDED", service("gamma", ip="10.96.0.12")))
    events.put(event("MODIFIED", service("alpha", port=9000)))
    events.put(event("DELETED", service("beta")))
    eventually(lambda: run.routes.routes.get("beta") == {})
    assert run.routes.routes["gamma"] == {".*": "http://10.96.0.12:8000"}
    assert run.routes.routes["alpha"] == {".*": "http://10.96.0.10:9000"}
    watch = next(q for path, q in api.requests if q.get("watch"))
    assert watch["resourceVersion"] == ["100"] and watch["allowWatchBookmarks"] == ["true"]


def test_a_changed_proxy_path_label_moves_the_route(
    api: FakeApi, start: Callable[[], Running]
) -> None:
    api.items = [service("alpha")]
    events = api.new_watch()
    run = start()
    eventually(lambda: "alpha" in run.routes.routes)
    events.put(event("MODIFIED", service("alpha", **{"toollabs-proxy-path": "api"})))
    eventually(lambda: run.routes.routes["alpha"] == {"/api.*": "http://10.96.0.10:8000"})


def test_a_dropped_stream_resumes_from_the_last_bookmark(
    api: FakeApi, start: Callable[[], Running]
) -> None:
    first = api.new_watch()
    second = api.new_watch()
    run = start()
    bookmark = {"kind": "Service", "apiVersion": "v1", "metadata": {"resourceVersion": "250"}}
    first.put(event("BOOKMARK", bookmark))
    first.put(None)  # the server ends the watch
    second.put(event("ADDED", service("delta")))
    eventually(lambda: "delta" in run.routes.routes)
    versions = [q["resourceVersion"] for path, q in api.requests if q.get("watch")]
    assert versions[:2] == [["100"], ["250"]]
    lists = [q for path, q in api.requests if not q.get("watch")]
    assert len(lists) == 1  # resumed, not relisted


def test_410_gone_relists_and_the_relist_is_a_full_resync(
    api: FakeApi, start: Callable[[], Running]
) -> None:
    api.items = [service("alpha"), service("beta")]
    first = api.new_watch()
    api.new_watch()
    run = start()
    eventually(lambda: set(run.routes.routes) == {"alpha", "beta"})
    api.items = [service("alpha")]  # beta went away while we were not watching
    api.list_version = "300"
    first.put(event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"}))
    eventually(lambda: set(run.routes.routes) == {"alpha"})
    eventually(lambda: len([q for _, q in api.requests if q.get("watch")]) == 2)
    versions = [q["resourceVersion"] for path, q in api.requests if q.get("watch")]
    assert versions == [["100"], ["300"]]


def test_api_errors_back_off_and_keep_the_routes(
    api: FakeApi, start: Callable[[], Running]
) -> None:
    api.items = [service("alpha")]
    first = api.new_watch()
    run = start()
    eventually(lambda: "alpha" in run.routes.routes)
    api.fail_lists = 2
    first.put(event("ERROR", {"kind": "Status", "code": 410}))
    eventually(lambda: run.watcher.state == "down")
    assert "alpha" in run.routes.routes  # an unreachable API removes nothing
    api.new_watch()
    eventually(lambda: run.watcher.state == "up")
    lists = [q for path, q in api.requests if not q.get("watch")]
    assert len(lists) == 4  # the first, two failures, and the one that worked


def test_a_wrong_token_is_an_error_state_not_a_crash(api: FakeApi, tmp_path: Path) -> None:
    token_file = tmp_path / "bad-token"
    token_file.write_text("wrong")
    settings = KubernetesSettings(
        api_url=api.url, token_file=token_file, ca_file=api.ca_file, max_backoff=0.1
    )
    watcher = KubernetesWatcher(MemoryRegistrar(), settings)

    async def briefly() -> None:
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(0.5)
        assert not task.done()
        task.cancel()

    asyncio.run(briefly())
    assert watcher.state == "down"
