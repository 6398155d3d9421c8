"""A real WebSocket backend (the ``websockets`` asyncio server) on its own thread, and a
client helper that connects through the proxy with the proxy's Host name."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import Future
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.sync.client import ClientConnection, connect

from portway.model import Backend


async def _handler(conn: ServerConnection) -> None:
    path = conn.request.path if conn.request is not None else "/"
    if path == "/close":
        await conn.close(4001, "bye from backend")
        return
    if path == "/silent":
        await conn.wait_closed()
        return
    async for message in conn:  # echo
        await conn.send(message)


class WsOrigin:
    def __init__(self, name: str = "ws") -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server = self._call(self._serve())
        self.port: int = self.server.sockets[0].getsockname()[1]

    async def _serve(self) -> Server:
        return await serve(_handler, "127.0.0.1", 0, max_size=None)

    def _call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=10)

    def backend(self, **kw: Any) -> Backend:
        return Backend(id=self.name, address="127.0.0.1", port=self.port, **kw)

    @property
    def open_connections(self) -> int:
        async def count() -> int:
            return len(self.server.connections)

        return int(self._call(count()))

    def stop(self) -> None:
        self.server.close()
        self._call(self.server.wait_closed())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def ws_connect(port: int, path: str = "/", host: str = "app.example.org") -> ClientConnection:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return connect(f"ws://{host}{path}", sock=sock, max_size=None, open_timeout=5)
