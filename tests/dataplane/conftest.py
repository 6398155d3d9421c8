"""Real loopback fixtures: a DataPlane on its own uvloop thread, threaded origin servers.

pytest-asyncio is not used: the data plane runs in a background thread with its own
loop, and tests talk to it through plain sockets, http.client and httpx like any client.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop

from portway.dataplane import DataPlane, DataPlaneSettings
from portway.model import Backend, Certificate, Proxy
from portway.model.backend_policy import BackendPolicy
from portway.model.listen_policy import ListenPolicy
from portway.observability.access_log import AccessLog
from portway.router import RouteTable, Snapshot
from tests.conftest import TEST_POLICY
from tests.dataplane.loopwatch import LoopWatch
from tests.dataplane.wsorigin import WsOrigin
from tests.http_server import TestHTTPServer

CHUNK = b"x" * 65536


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body_len: int
    conn: int

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class Origin:
    name: str
    server: http.server.ThreadingHTTPServer
    seen: list[Seen] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def connections(self) -> set[int]:
        return {s.conn for s in self.seen}

    def backend(self, **kw: Any) -> Backend:
        return Backend(id=self.name, address="127.0.0.1", port=self.port, **kw)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body leave in two writes: without TCP_NODELAY the second waits for the
    # proxy's delayed ACK (40 ms), which would make request-heavy tests crawl.
    disable_nagle_algorithm = True
    origin: Origin

    def log_message(self, *args: Any) -> None:
        pass

    def _read_body(self) -> int:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                left = size
                while left:
                    left -= len(self.rfile.read(min(left, 65536)))
                total += size
                self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        total = left
        while left:
            got = self.rfile.read(min(left, 65536))
            if not got:
                break
            left -= len(got)
        return total

    def _send(self, status: int, body: bytes, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        body_len = self._read_body() if self.command in ("POST", "PUT") else 0
        self.origin.seen.append(
            Seen(
                self.command,
                self.path,
                list(self.headers.items()),
                body_len,
                self.client_address[1],
            )
        )
        path = self.path.split("?")[0]
        if path == "/slow":
            time.sleep(2.0)
            self._send(200, b"late")
        elif path == "/pause":
            time.sleep(0.3)
            self._send(200, b"paused")
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/nolength":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True
        elif path == "/big":
            size = int(self.headers.get("X-Size", str(50 * 1024 * 1024)))
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for _ in range(size // len(CHUNK)):
                self.wfile.write(CHUNK)
        elif path == "/ambiguous":
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n"
            )
        elif path == "/204":
            self.send_response(204)
            self.end_headers()
        elif path == "/304":
            self.send_response(304)
            self.send_header("ETag", '"x"')
            self.end_headers()
        elif path == "/hop":
            self._send(
                200,
                b"hop",
                (("Connection", "X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5")),
            )
        else:
            self._send(200, f"{self.origin.name} {self.path} {body_len}".encode())

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle


@pytest.fixture
def make_origin() -> Iterator[Callable[[str], Origin]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def make(name: str) -> Origin:
        handler = type("H", (_Handler,), {})
        server = TestHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        origin = Origin(name, server)
        handler.origin = origin  # type: ignore[attr-defined]
        # A short poll interval keeps shutdown() (once per test) from adding half a second.
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return origin

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def ws_origin() -> Iterator[WsOrigin]:
    origin = WsOrigin()
    yield origin
    origin.stop()


@pytest.fixture
def origin(make_origin: Callable[[str], Origin]) -> Origin:
    return make_origin("one")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port where connecting hangs: a listener with a full accept queue, so
    Linux drops further SYNs (a backend that never answers, without leaving 127/8)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    try:
        yield int(listener.getsockname()[1])
    finally:
        filler.close()
        listener.close()


# Every data plane loop a test starts, for the autouse check below.
WATCHES: list[LoopWatch] = []


@pytest.fixture(autouse=True)
def loop_never_blocks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test during which one callback held a data plane's loop for more than a
    few ms (a blocking call or a long computation; see loopwatch.py for the limits).
    Set up before the test's other fixtures, so it checks after they stopped the loop."""
    first = len(WATCHES)
    yield
    watches = WATCHES[first:]
    del WATCHES[first:]
    report = os.environ.get("PORTWAY_LOOPWATCH_REPORT")  # worst values, to tune limits
    if report and watches:
        with open(report, "a") as out:
            out.write(f"{request.node.nodeid} {worst_of(watches)}\n")
    check_watches(watches)


def worst_of(watches: list[LoopWatch]) -> str:
    return " ".join(
        f"{kind}={max(w.worst[kind] for w in watches) * 1000:.2f}ms" for kind in ("cpu", "sleep")
    )


def check_watches(watches: list[LoopWatch]) -> None:
    blocks = [block for w in watches for block in w.blocks]
    if blocks:
        pytest.fail("\n\n".join(str(b) for b in blocks), pytrace=False)


class ProxyRunner:
    """A DataPlane serving on 127.0.0.1:<free port> from a background uvloop thread,
    watched by a LoopWatch."""

    def __init__(
        self,
        settings: DataPlaneSettings,
        access_log: AccessLog | None = None,
        *,
        backend_policy: BackendPolicy = TEST_POLICY,
        port: int = 0,
        default_certificate: tuple[Path, Path] | None = None,
        listen_policy: ListenPolicy | None = None,
    ) -> None:
        self.listen_policy = listen_policy
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.backend_policy = backend_policy
        self.listen_port = port
        self.watch = LoopWatch(self.loop)
        self.watch.start()
        WATCHES.append(self.watch)
        self.dp = self.call(self._start(settings, access_log, default_certificate))
        self.port = self.dp.bound_ports[0]
        self.tls_port = self.dp.https_port if default_certificate else 0
        self.version = 0

    async def _start(
        self,
        settings: DataPlaneSettings,
        access_log: AccessLog | None,
        default_certificate: tuple[Path, Path] | None,
    ) -> DataPlane:
        dp = DataPlane(
            settings,
            access_log=access_log,
            backend_policy=self.backend_policy,
            listen_policy=self.listen_policy,
        )
        await dp.listen_http("127.0.0.1", self.listen_port)
        if default_certificate:
            dp.tls.load_default(*default_certificate)
            await dp.listen_https("127.0.0.1", 0)
        return dp

    def call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=30)

    def snapshot(self, proxies: Iterable[Proxy], certs: Iterable[Certificate] = ()) -> Snapshot:
        self.version += 1
        return Snapshot(
            version=self.version,
            routes=RouteTable.build(list(proxies)),
            certificates={c.id: c for c in certs},
        )

    def apply(self, snapshot: Snapshot) -> bool:
        """Swap ``snapshot`` in; the next request sees it (True: the built-in plane
        applies every snapshot it is given)."""

        async def swap() -> None:
            self.dp.apply(snapshot)
            await self.dp.sync_listeners()

        self.call(swap())
        return bool(self.dp.applied_version == snapshot.version)

    def publish(self, proxies: Iterable[Proxy], certs: Iterable[Certificate] = ()) -> bool:
        return self.apply(self.snapshot(proxies, certs))

    def route(self, *proxies: Proxy) -> None:
        assert self.publish(proxies)

    def on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the data plane's loop (its state is not thread-safe)."""

        async def run() -> Any:
            return fn()

        return self.call(run())

    def stop(self, drain_timeout: float = 2.0) -> None:
        self.call(self.dp.close(drain_timeout))
        self.watch.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def proxy_for(
    hostname: str, *backends: Backend, prefix: str = "/", pid: str | None = None, **kw: Any
) -> Proxy:
    return Proxy(
        id=pid or f"{hostname}{prefix}",
        project="p",
        hostname=hostname,
        path_prefix=prefix,
        backends=backends,
        **kw,
    )


FAST = DataPlaneSettings(
    connect_timeout=1.0, read_timeout=1.0, client_header_timeout=1.0, keepalive_timeout=5.0
)


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., ProxyRunner]]:
    runners: list[ProxyRunner] = []

    def make(
        settings: DataPlaneSettings = FAST,
        access_log: AccessLog | None = None,
        *,
        backend_policy: BackendPolicy = TEST_POLICY,
        port: int = 0,
        **kw: Any,
    ) -> ProxyRunner:
        runner = ProxyRunner(settings, access_log, backend_policy=backend_policy, port=port, **kw)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()


@pytest.fixture
def proxy(make_proxy: Callable[..., ProxyRunner], origin: Origin) -> ProxyRunner:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    return runner


def raw(port: int, data: bytes, *, timeout: float = 3.0) -> tuple[bytes, bool]:
    """Send ``data``; return everything read and whether the proxy closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                part = sock.recv(65536)
            except TimeoutError:
                return received, False
            if not part:
                return received, True
            received += part
            sock.settimeout(max(0.05, deadline - time.monotonic()))
        return received, False


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


H_APP = b"Host: app.example.org\r\n"
