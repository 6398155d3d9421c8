"""The Toolforge list endpoint (``--toolforge-list``, port 8081 in Toolforge): which
tools have at least one route, for the reconciliation jobs that poll it (compat.md §2).

``GET /list`` → 200 ``application/json`` ``{"<tool>": {"status": "active"}, ...}``;
any other request → 404 ``Page not found\\n``. One request per connection, then close.

The body is built from the snapshot in force (never from the store) and kept per
snapshot object, so a poll costs one write of bytes already encoded, however many tools
there are; only the first poll after a configuration change walks the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from portway.router import Snapshot
from portway.sources.base import DOWN, STARTING, UP

log = logging.getLogger("portway.sources.toolforge")

MAX_HEAD: Final = 8192
_NOT_FOUND: Final = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n"
    b"Connection: close\r\n\r\nPage not found\n"
)
_POLLERS_GONE: Final = 60.0  # seconds without a poll before bodies are built on demand only
_BAD: Final = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def active_tools(snapshot: Snapshot, canonical_domain: str) -> list[str]:
    """The tools of ``snapshot`` with at least one route, sorted."""
    suffix = "." + canonical_domain
    cut = -len(suffix)
    tools = [
        route.proxy.hostname[:cut]
        for route in snapshot.routes.routes()
        if route.tool is not None and route.tool.paths and route.proxy.hostname.endswith(suffix)
    ]
    tools.sort()
    return tools


def list_body(snapshot: Snapshot, canonical_domain: str) -> bytes:
    # Joined by hand: ~10x faster than json.dumps of a 10 000-entry dict. The names are
    # labels of normalised hostnames (letters, digits, '-', '.'), which need no escaping
    # in JSON; tests/router/test_tools.py checks the body against json.loads.
    entries = '": {"status": "active"}, "'.join(active_tools(snapshot, canonical_domain))
    return ('{"' + entries + '": {"status": "active"}}' if entries else "{}").encode()


def list_response(body: bytes, *, head_only: bool = False) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Cache-Control: no-store\r\nConnection: close\r\n\r\n" % len(body)
    )
    return head if head_only else head + body


def answer(request_line: bytes, response: Callable[[bool], bytes]) -> bytes:
    """The bytes to send for a request line (``response(head_only)``: the 200)."""
    parts = request_line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return _BAD
    method, target = parts[0], parts[1].partition(b"?")[0]
    if target == b"/list" and method in (b"GET", b"HEAD"):
        return response(method == b"HEAD")
    return _NOT_FOUND


class ToolList:
    """Serves /list from ``current()`` (the snapshot in force). It runs in a SourceSet
    like the sources (``run``, ``state``), so it is restarted if it fails and its state
    shows in /healthz."""

    name = "toolforge-list"

    def __init__(
        self,
        current: Callable[[], Snapshot],
        canonical_domain: str,
        *,
        host: str = "127.0.0.1",
        port: int = 8081,
        timeout: float = 5.0,
        refresh: float = 0.25,
    ) -> None:
        """``refresh``: how often a changed snapshot's body is built ahead of the next
        poll (only while someone has polled in the last minute), so that a poll right
        after a change does not wait for 10 000 entries to be joined."""
        self._current = current
        self._domain = canonical_domain
        self._address = (host, port)
        self._timeout = timeout
        self._cached: tuple[Snapshot, bytes] | None = None
        self._refresh = refresh
        self._polled = -1e9  # loop time of the last poll
        self.builds = 0  # bodies built, for the tests
        self.state = STARTING
        self.outcomes: dict[str, int] = {}  # "listed", "not_found", "bad"

    async def run(self) -> None:
        server = await self.serve(*self._address)
        self.state = UP
        ahead = asyncio.create_task(self._build_ahead(), name="toolforge-list-ahead")
        try:
            await server.serve_forever()
        finally:
            self.state = DOWN
            ahead.cancel()
            server.close()

    async def _build_ahead(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._refresh)
            if loop.time() - self._polled < _POLLERS_GONE:
                self._body()

    def response(self, head_only: bool = False) -> bytes:
        with contextlib.suppress(RuntimeError):  # called outside a loop by pure tests
            self._polled = asyncio.get_running_loop().time()
        body = self._body()
        if head_only:
            return body.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        return body

    def _body(self) -> bytes:
        snapshot = self._current()
        cached = self._cached
        if cached is None or cached[0] is not snapshot:  # every swap is a new object
            self.builds += 1
            cached = self._cached = (snapshot, list_response(list_body(snapshot, self._domain)))
        return cached[1]

    def _count(self, reply: bytes) -> None:
        outcome = "bad" if reply is _BAD else "not_found" if reply is _NOT_FOUND else "listed"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    async def serve(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._connection, host, port, limit=MAX_HEAD)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                head = await reader.readuntil(b"\r\n\r\n")
            reply = answer(head.partition(b"\n")[0], self.response)
            self._count(reply)
            writer.write(reply)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self._count(_BAD)
            writer.write(_BAD)
        except OSError:
            pass  # the client went away
        finally:
            writer.close()
