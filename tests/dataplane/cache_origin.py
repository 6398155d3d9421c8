"""A loopback origin for the cache tests: each path answers with the headers a test gave
it, counts its requests, and honours If-None-Match against its ETag (304)."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.http_server import TestHTTPServer


@dataclass
class Resource:
    body: bytes = b"hello"
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    requests: list[dict[str, str]] = field(default_factory=list)  # each request's headers
    delay: float = 0.0  # seconds before answering (to hold concurrent misses together)
    stream: int = 0  # >0: send this many 1 MiB chunks, waiting on ``gate`` halfway
    gate: threading.Event | None = None
    cut: int = 0  # >0: declare the whole body, send this many bytes of it, then close


class CacheOrigin:
    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.lock = threading.Lock()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                origin.answer(self)

            do_HEAD = do_POST = do_PURGE = do_DELETE = do_GET

        self.server = TestHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def add(self, path: str, **kw: Any) -> Resource:
        resource = self.resources[path] = Resource(**kw)
        return resource

    def count(self, path: str) -> int:
        return len(self.resources[path].requests)

    def answer(self, h: http.server.BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        resource = self.resources.get(h.path.split("?")[0])
        if resource is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        with self.lock:
            resource.requests.append(dict(h.headers.items()))
        if resource.delay:
            threading.Event().wait(resource.delay)
        etag = resource.headers.get("ETag")
        if etag is not None and h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            for k, v in resource.headers.items():
                h.send_header(k, v)
            h.end_headers()
            return
        h.send_response(resource.status)
        for k, v in resource.headers.items():
            h.send_header(k, v)
        if resource.stream:
            self._stream(h, resource)
            return
        h.send_header("Content-Length", str(len(resource.body)))
        h.end_headers()
        if resource.cut:
            h.wfile.write(resource.body[: resource.cut])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if h.command != "HEAD":
            h.wfile.write(resource.body)

    def _stream(self, h: http.server.BaseHTTPRequestHandler, resource: Resource) -> None:
        chunk = b"z" * (1 << 20)
        h.send_header("Content-Length", str(resource.stream * len(chunk)))
        h.end_headers()
        for i in range(resource.stream):
            if i == resource.stream // 2 and resource.gate is not None:
                resource.gate.wait(30)  # the client must have bytes before the rest is sent
            h.wfile.write(chunk)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cache_origin() -> Iterator[CacheOrigin]:
    origin = CacheOrigin()
    yield origin
    origin.stop()


def get(
    port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": "cache.example.org", **(headers or {})})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()
