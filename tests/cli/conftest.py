"""A real loopback HTTP server standing in for the Portway API, and a CLI runner bound to it.

The fake API answers scripted replies and records every request, so tests assert both
what the CLI sent (method, path, token, JSON body) and how it shows the answer.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner, Result

from portway.cli.main import main


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class FakeApi:
    url: str = ""
    token: str = "s3cret-token"
    requests: list[Recorded] = field(default_factory=list)
    replies: dict[tuple[str, str], Reply] = field(default_factory=dict)

    def reply(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        """Answer ``method path`` with ``body`` as JSON (or as-is when it is bytes)."""
        raw = (
            body
            if isinstance(body, bytes)
            else (b"" if body is None else json.dumps(body).encode())
        )
        self.replies[(method, path)] = Reply(status, raw)

    def error(self, method: str, path: str, status: int, title: str, message: str) -> None:
        doc = {"error": {"code": status, "title": title, "message": message}}
        self.reply(method, path, status, doc)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            api.requests.append(Recorded(self.command, self.path, headers, body))
            reply = api.replies.get((self.command, self.path))
            if reply is None:
                doc = {"error": {"code": 404, "title": "Not Found", "message": "no such route"}}
                reply = Reply(404, json.dumps(doc).encode())
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

    return Handler


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def cli(api: FakeApi) -> Any:
    """``cli(*args, env=...)`` runs ``portway`` against the fake API with a token set."""

    def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
        base: dict[str, str | None] = {
            "PORTWAY_URL": api.url,
            "PORTWAY_TOKEN": api.token,
            "PORTWAY_PROJECT": None,
            "PORTWAY_FORMAT": None,
        }
        base.update(env or {})
        return CliRunner().invoke(main, list(args), env=base)

    return run


@pytest.fixture
def dead_url() -> str:
    """The URL of a loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}"
