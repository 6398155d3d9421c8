"""What NginxRunner and HaproxyRunner share: a Portway driver on its own asyncio thread,
fed whole snapshots.

The interface (``apply``, ``publish``, ``route``, ``port``, ``tls_port``, ``stop``) is the
one tests/dataplane's ``ProxyRunner`` has too, so tests/conformance drives every data
plane through it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterable
from concurrent.futures import Future
from typing import Any, Protocol

from portway.model import Certificate, Proxy
from portway.router import RouteTable, Snapshot


class Driver(Protocol):
    """The part of NginxDriver and HaproxyDriver a runner uses."""

    errors: Any

    async def start(self) -> None: ...
    def apply(self, snapshot: Snapshot, changed_ids: Iterable[str] = ()) -> None: ...
    async def wait_applied(self, version: int, timeout: float = 30.0) -> bool: ...
    async def close(self) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


closed_port = free_port  # nothing listens there once the probe socket is closed


def snapshot_of(version: int, proxies: Iterable[Proxy], certs: Iterable[Certificate]) -> Snapshot:
    return Snapshot(
        version=version,
        routes=RouteTable.build(list(proxies)),
        certificates={c.id: c for c in certs},
    )


class DriverRunner:
    """A started driver on its own loop thread; ``apply``/``publish``/``route`` return
    once the data plane serves the snapshot (or refused it)."""

    def __init__(self, driver: Driver, port: int, tls_port: int) -> None:
        self.port, self.tls_port = port, tls_port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.driver = driver
        self.call(self.driver.start())
        self.version = 0

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=timeout)

    def snapshot(self, proxies: Iterable[Proxy], certs: Iterable[Certificate] = ()) -> Snapshot:
        self.version += 1
        return snapshot_of(self.version, proxies, certs)

    def apply_nowait(self, snapshot: Snapshot) -> None:
        self.loop.call_soon_threadsafe(self.driver.apply, snapshot, ())

    def apply(self, snapshot: Snapshot) -> bool:
        """Hand ``snapshot`` over; True once it is served, False if it was refused."""
        self.apply_nowait(snapshot)
        return bool(self.call(self.driver.wait_applied(snapshot.version)))

    def publish(self, proxies: Iterable[Proxy], certs: Iterable[Certificate] = ()) -> bool:
        return self.apply(self.snapshot(proxies, certs))

    def route(self, *proxies: Proxy) -> None:
        assert self.publish(proxies), self.driver.errors

    def stop(self) -> None:
        self.call(self.driver.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
