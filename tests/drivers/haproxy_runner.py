"""A real HAProxy (Debian's package, /usr/sbin/haproxy) driven by HaproxyDriver in a
private prefix under tmp_path (config, pid, master and stats sockets), on free loopback
ports. ``HaproxyRunner`` has the interface of ``NginxRunner`` and tests/dataplane's
``ProxyRunner`` (``route``, ``publish``, ``port``, ``tls_port``, ``stop``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import trustme

from portway.drivers import haproxy_runtime as runtime
from portway.drivers.haproxy import HaproxyDriver, HaproxySettings
from portway.drivers.haproxy_options import HaproxyOptions
from portway.model import Certificate, Proxy
from portway.router import RouteTable, Snapshot

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class HaproxyRunner:
    """An HaproxyDriver on its own asyncio thread; ``route``/``publish`` return once
    HAProxy serves the snapshot (or refused it)."""

    def __init__(
        self,
        prefix: Path,
        *,
        default_certificate: tuple[Path, Path] | None = None,
        trusted_proxies: tuple[str, ...] = (),
        coalesce: float = 0.05,
        spare_slots: int = 4,
        external: bool = False,
    ) -> None:
        self.port = free_port()
        self.tls_port = free_port() if default_certificate else 0
        options = HaproxyOptions(
            http=(("127.0.0.1", self.port),),
            https=(("127.0.0.1", self.tls_port),) if default_certificate else (),
            trusted_proxies=trusted_proxies,
            threads=1,
            spare_slots=spare_slots,
            hard_stop_after=5.0,
        )
        settings = HaproxySettings(
            prefix=prefix,
            binary=HAPROXY,
            options=options,
            coalesce=coalesce,
            default_certificate=default_certificate,
            external=external,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.driver = HaproxyDriver(settings)
        self.call(self.driver.start())
        self.version = 0

    def call(self, coro: Any, timeout: float = 60) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=timeout)

    def snapshot(self, proxies: list[Proxy], certs: list[Certificate] = ()) -> Snapshot:  # type: ignore[assignment]
        self.version += 1
        return Snapshot(
            version=self.version,
            routes=RouteTable.build(proxies),
            certificates={c.id: c for c in certs},
        )

    def apply_nowait(self, snapshot: Snapshot) -> None:
        self.loop.call_soon_threadsafe(self.driver.apply, snapshot, ())

    def publish(self, proxies: list[Proxy], certs: list[Certificate] = ()) -> bool:  # type: ignore[assignment]
        snapshot = self.snapshot(proxies, certs)
        self.apply_nowait(snapshot)
        return bool(self.call(self.driver.wait_applied(snapshot.version)))

    def route(self, *proxies: Proxy) -> None:
        assert self.publish(list(proxies)), self.driver.errors

    def processes(self) -> runtime.Processes:
        """The master's own account: its reload counter and its workers."""
        return self.call(runtime.processes(self.driver.master_socket))  # type: ignore[no-any-return]

    def ask(self, command: str) -> str:
        return self.call(runtime.ask(self.driver.stats_socket, command))  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.call(self.driver.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def make_haproxy(tmp_path: Path) -> Iterator[Callable[..., HaproxyRunner]]:
    runners: list[HaproxyRunner] = []

    def make(**kw: Any) -> HaproxyRunner:
        runner = HaproxyRunner(tmp_path / f"haproxy{len(runners)}", **kw)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()


@pytest.fixture
def haproxy(make_haproxy: Callable[..., HaproxyRunner]) -> HaproxyRunner:
    return make_haproxy()


def default_pair(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    leaf = ca.issue_cert("*.portway.test", "portway.test")
    chain, key = directory / "default.pem", directory / "default-key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    return chain, key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


closed_port = free_port  # nothing listens there once the probe socket is closed
