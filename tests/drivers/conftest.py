"""A real nginx (Debian's package, /usr/sbin/nginx) driven by NginxDriver in a private
prefix under tmp_path, on free loopback ports.

``NginxRunner`` has the interface of tests/dataplane's ``ProxyRunner`` (``route``,
``publish``, ``port``, ``tls_port``, ``stop``), so a behaviour test written against
either can be parametrized over both data planes.
"""

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

from portway.drivers.nginx import NginxDriver, NginxSettings
from portway.drivers.nginx_options import NginxOptions
from portway.model import Certificate, Proxy
from portway.router import RouteTable, Snapshot
from portway.tls.certs import inspect_certificate
from tests.dataplane.conftest import make_origin, origin, ws_origin  # noqa: F401 (fixtures)
from tests.dataplane.tls_origin import ca, make_tls_origin  # noqa: F401 (fixtures)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NginxRunner:
    """An NginxDriver on its own asyncio thread; ``route``/``publish`` return once nginx
    serves the snapshot (or refused it)."""

    def __init__(
        self,
        prefix: Path,
        *,
        default_certificate: tuple[str, str] | None = None,
        trusted_proxies: tuple[str, ...] = (),
        forwarded_for: bool = True,
        coalesce: float = 0.05,
    ) -> None:
        self.port = free_port()
        self.tls_port = free_port() if default_certificate else 0
        options = NginxOptions(
            http=(("127.0.0.1", self.port),),
            https=(("127.0.0.1", self.tls_port),) if default_certificate else (),
            default_certificate=default_certificate,
            trusted_proxies=trusted_proxies,
            forwarded_for=forwarded_for,
            worker_processes="2",
        )
        settings = NginxSettings(prefix=prefix, binary=NGINX, options=options, coalesce=coalesce)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.driver = NginxDriver(settings)
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

    def stop(self) -> None:
        self.call(self.driver.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def make_nginx(tmp_path: Path) -> Iterator[Callable[..., NginxRunner]]:
    runners: list[NginxRunner] = []

    def make(**kw: Any) -> NginxRunner:
        runner = NginxRunner(tmp_path / f"nginx{len(runners)}", **kw)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()


@pytest.fixture
def nginx(make_nginx: Callable[..., NginxRunner]) -> NginxRunner:
    return make_nginx()


def certificate(leaf: trustme.LeafCert, cert_id: str, project: str = "p") -> Certificate:
    chain = "".join(b.bytes().decode() for b in leaf.cert_chain_pems)
    key = leaf.private_key_pem.bytes().decode()
    info = inspect_certificate(chain, key)
    return Certificate(
        id=cert_id,
        project=project,
        name=cert_id,
        chain_pem=chain,
        key_pem=key,
        names=info.names,
        fingerprint=info.fingerprint,
    )


# The HAProxy runner's fixtures (tests/drivers/haproxy_runner.py), for every test here.
from tests.drivers.haproxy_runner import haproxy, make_haproxy  # noqa: E402, F401
