"""Whole-system test harness: ``portway serve`` as a subprocess, real backend HTTP servers."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.http_server import TestHTTPServer

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all held open until every one is picked)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Backend:
    """A real HTTP server that answers with its name and records what it saw."""

    name: str
    server: ThreadingHTTPServer
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler_class(name: str, seen: list[dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            record = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_len": len(body),
            }
            seen.append(record)
            if self.path.startswith("/slow/"):  # /slow/<seconds>: an in-flight request
                time.sleep(float(self.path.split("/")[2]))
            out = json.dumps({"backend": name, **record}).encode()
            # Head and body in one write: a test that SIGKILLs this process must not
            # land between them, since no proxy can retry a response whose head it has
            # already passed on (and two writes would also wait on delayed ACKs).
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(out)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + out)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def start_backend(name: str, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> Backend:
    """A backend on ``host`` (loopback); ``tls``: it speaks only TLS, with that context."""
    seen: list[dict[str, Any]] = []
    server = TestHTTPServer((host, 0), _handler_class(name, seen))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    backend = Backend(name=name, server=server, seen=seen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return backend


class BackendProcess:
    """The same backend in its own process, so that a test can kill it for real (every
    connection reset, as when an instance dies)."""

    def __init__(self, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PROCESS_MAIN, name],
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


_PROCESS_MAIN = """
import sys
from tests.http_server import TestHTTPServer
from tests.integration.harness import _handler_class
server = TestHTTPServer(("127.0.0.1", 0), _handler_class(sys.argv[1], []))
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


_IN_USE = re.compile(r"bind on address \('[^']*', (\d+)\): address already in use")


def _port_in_use(output: str) -> int | None:
    """The port ``portway serve`` could not bind, from its one-line start-up error."""
    found = _IN_USE.search(output)
    return int(found.group(1)) if found else None


class Portway:
    """A running ``portway serve`` subprocess and clients for its API and data plane."""

    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 0,
        extra: list[str] | None = None,
        loopback_backends: bool = True,
        metrics: bool = True,
        host: str = "127.0.0.1",
        bind: str | None = None,
        wrap: list[str] | None = None,
        log: Path | None = None,
    ):
        """``loopback_backends``: pass --backend-allow 127.0.0.0/8, since the test
        backends listen on 127.0.0.1 and the production default refuses loopback.
        ``metrics``: a metrics listener on a free port (else --metrics '').
        ``host``: the address the API, metrics and clients use; ``bind``: the data
        plane's listening address (default ``host``); ``wrap``: a command prefix, such
        as ``ip netns exec NS`` (tests/ha); ``log``: its output goes to this file instead
        of a pipe (a pipe nobody reads until stop() blocks a node that logs a lot, such as
        one that has lost its database)."""
        self.log = log
        self.host = host
        self.bind = bind or host
        self.wrap = wrap or []
        self.data_dir = data_dir
        self.workers = workers
        self.extra = extra or []
        self.loopback_backends = loopback_backends
        self.admin_token = secrets.token_urlsafe(16)
        self.http_port, self.https_port, self.api_port, metrics_port = free_ports(4)
        self.metrics_port = metrics_port if metrics else 0
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def env(self, token: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PORTWAY_ADMIN_TOKEN"] = self.admin_token
        env["PORTWAY_URL"] = self.api_url
        env["PORTWAY_TOKEN"] = token or self.admin_token
        return env

    def launch(self) -> None:
        """Start ``portway serve`` and return at once."""
        cmd = [
            *self.wrap,
            str(VENV_BIN / "portway"),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--http",
            f"{self.bind}:{self.http_port}",
            "--https",
            f"{self.bind}:{self.https_port}",
            "--api",
            f"{self.host}:{self.api_port}",
            "--workers",
            str(self.workers),
            "--metrics",
            f"{self.host}:{self.metrics_port}" if self.metrics_port else "",
            "--drain-timeout",
            "3",
            *(["--backend-allow", "127.0.0.0/8"] if self.loopback_backends else []),
            *self.extra,
        ]
        self.proc = subprocess.Popen(
            cmd,
            env=self.env(),
            stdout=subprocess.PIPE if self.log is None else self.log.open("a"),
            stderr=subprocess.STDOUT,
            text=True,
        )

    def start(self) -> None:
        """``launch()``, then wait until /healthz and the data plane both answer.

        The ports are picked free, then released for ``portway serve`` to bind: another
        process (a test server binding port 0, a parallel job) may take one in between.
        Such a start is tried again on fresh ports, twice; any other failure is raised."""
        for attempt in range(3):
            self.launch()
            try:
                self.wait_up()
                return
            except RuntimeError as err:
                lost = _port_in_use(str(err))
                own = (self.http_port, self.https_port, self.api_port, self.metrics_port)
                if attempt == 2 or lost is None or lost not in own:
                    raise
                self.http_port, self.https_port, self.api_port, ports_metrics = free_ports(4)
                self.metrics_port = ports_metrics if self.metrics_port else 0

    def wait_up(self) -> None:
        """Wait until /healthz and the data plane of a launched node both answer."""
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"portway serve exited: {self.read_output()}")
            try:
                healthy = httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200
                if healthy and self._data_plane_up():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"portway serve did not come up: {self.output}")

    def _data_plane_up(self) -> bool:
        try:
            with socket.create_connection((self.host, self.http_port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.output += self.read_output()
        return code

    def read_output(self) -> str:
        """What the process wrote since the last call (all of its log file)."""
        if self.log is not None:
            return self.log.read_text() if self.log.exists() else ""
        return self.proc.stdout.read() if self.proc and self.proc.stdout else ""

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token or self.admin_token}
        return httpx.request(method, f"{self.api_url}{path}", headers=headers, timeout=10, **kw)

    def get(self, host: str, path: str = "/", **kw: Any) -> httpx.Response:
        headers = {"Host": host, **kw.pop("headers", {})}
        return httpx.get(f"{self.http_url}{path}", headers=headers, timeout=10, **kw)


class Load:
    """Keep-alive GETs of ``path`` on ``base`` in a loop on a thread, counting answers
    that are not 200."""

    def __init__(self, base: str, host: str, path: str = "/") -> None:
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base, host, path), daemon=True)
        self._thread.start()

    def _run(self, base: str, host: str, path: str) -> None:
        with httpx.Client(base_url=base, headers={"Host": host}, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(path).status_code
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))
                    continue
                if status == 200:
                    self.ok += 1
                else:
                    self.failed.append(str(status))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def create_project_and_proxy(
    pw: Portway, project: str, hostname: str, ports: list[int], **proxy: Any
) -> dict[str, Any]:
    r = pw.api("POST", "/v1/projects", json={"project": {"name": project}})
    assert r.status_code in (201, 409), r.text
    body = {
        "proxy": {
            "hostname": hostname,
            "backends": [{"address": "127.0.0.1", "port": p} for p in ports],
            **proxy,
        }
    }
    r = pw.api("POST", f"/v1/{project}/proxies", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()["proxy"]
    return result


def wait_routed(pw: Portway, host: str, *, status: int = 200, timeout: float = 5) -> float:
    """Poll until ``host`` answers ``status``; returns the seconds it took."""
    start = time.monotonic()
    while True:
        try:
            if pw.get(host).status_code == status:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{host} did not answer {status} within {timeout}s")
        time.sleep(0.005)


@contextmanager
def running_tier(nodes: list[Portway]) -> Iterator[list[Portway]]:
    """Start nodes that share one store, and stop every one that started. The admin
    token is the store's, so each node takes the first one's."""
    for node in nodes[1:]:
        node.admin_token = nodes[0].admin_token
    started: list[Portway] = []
    try:
        for node in nodes:
            node.start()
            started.append(node)
        yield nodes
    finally:
        for node in started:
            node.stop()
