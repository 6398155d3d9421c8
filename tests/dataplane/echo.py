"""A line echo server on its own asyncio loop thread (a non-HTTP backend), optionally
over TLS; it answers each line with ``<name>:<line>`` and keeps the first bytes each
connection sent before its first line (where a PROXY protocol header arrives)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from concurrent.futures import Future
from typing import Any


class EchoServer:
    def __init__(self, name: str, *, tls: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.tls = tls
        self.preludes: list[bytes] = []  # what came before the first line, per connection
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server = self._call(self._start())
        self.port: int = self.server.sockets[0].getsockname()[1]

    def _call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=10)

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.tls, backlog=4096, limit=1 << 20
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            first = await reader.read(1)
            prelude = b""
            if first == b"\r":  # a PROXY v2 signature starts with CR; a line never does here
                head = first + await reader.readexactly(15)
                prelude = head + await reader.readexactly(int.from_bytes(head[14:16], "big"))
                first = b""
            self.preludes.append(prelude)
            pending = first
            while True:
                line = pending + await reader.readline()
                pending = b""
                if not line:
                    break
                writer.write(self.name.encode() + b":" + line)
                await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            writer.transport.abort()  # the server is stopping
            raise
        finally:
            writer.close()

    def backend(self, **kw: Any) -> Any:
        from portway.model import Backend

        return Backend(id=self.name, address="127.0.0.1", port=self.port, **kw)

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            mine = asyncio.current_task()
            handlers = [t for t in asyncio.all_tasks() if t is not mine]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        self._call(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
