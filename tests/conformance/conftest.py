"""One data plane per parameter, started once per session: the built-in one in process
(tests/dataplane's ``ProxyRunner``), nginx and HAProxy as real daemons in private
prefixes driven through Portway's drivers (tests/drivers' runners).

Every case takes ``plane`` and sees one small interface (``Plane``): ``apply`` a
snapshot and wait until it is served, ``publish``/``route`` to build and apply the next
one, and ``port``/``tls_port`` to send to. A case replaces the whole route table, so
cases never see each other's proxies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import pytest
import trustme

from portway.cache.store import Purge
from portway.dataplane import DataPlaneSettings
from portway.model import Certificate, Proxy
from portway.model.listen_policy import ListenPolicy
from portway.router import Snapshot
from tests.active_checks import ActiveChecks
from tests.conformance import table
from tests.dataplane.conftest import ProxyRunner, make_origin, origin, ws_origin  # noqa: F401
from tests.dataplane.test_listeners import free_ports, policy_for
from tests.dataplane.test_stream import make_echo  # noqa: F401 (fixture)
from tests.dataplane.tls_origin import default_pair, make_tls_origin  # noqa: F401
from tests.drivers.conftest import NginxRunner
from tests.drivers.haproxy_runner import HaproxyRunner


class Plane(Protocol):
    """What a conformance case asks of a data plane."""

    port: int
    tls_port: int
    ports: tuple[int, ...]  # what its --listen-ports allows proxies to claim (PORTS)

    def snapshot(self, proxies: Iterable[Proxy], certs: Iterable[Certificate] = ()) -> Snapshot:
        """The next version of the whole configuration."""

    def apply(self, snapshot: Snapshot) -> bool:
        """Serve ``snapshot``; True once it is served, False if it was refused."""

    def publish(self, proxies: Iterable[Proxy], certs: Iterable[Certificate] = ()) -> bool: ...

    def route(self, *proxies: Proxy) -> None:
        """Publish ``proxies`` and fail the case if the plane refuses them."""

    def purge(self, proxy_id: str, purge: Purge) -> int:
        """The API's purge (``DataPlaneHandle.purge``): the entries dropped."""

    def stop(self) -> None: ...


# The built-in plane's read timeout covers the origin's /slow (2 s), as nginx's and
# HAProxy's defaults do.
BUILTIN = DataPlaneSettings(
    connect_timeout=1.0, read_timeout=5.0, client_header_timeout=1.0, keepalive_timeout=5.0
)
LOOPBACK = ("127.0.0.0/8",)


class BuiltinPlane(ProxyRunner):
    def __init__(
        self, settings: DataPlaneSettings, pair: tuple[Path, Path], listen_policy: ListenPolicy
    ) -> None:
        super().__init__(settings, default_certificate=pair, listen_policy=listen_policy)
        self.checks = ActiveChecks(self.call, self.dp.set_health, self.dp.upstream_tls)

    def apply(self, snapshot: Snapshot) -> bool:
        applied = super().apply(snapshot)
        self.checks.update(snapshot)
        return applied

    def purge(self, proxy_id: str, purge: Purge) -> int:
        return int(self.on_loop(lambda: self.dp.purge(proxy_id, purge)))

    def stop(self, drain_timeout: float = 2.0) -> None:
        self.checks.close()
        super().stop(drain_timeout)


class CheckedNginx(NginxRunner):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checks = ActiveChecks(self.call, self.driver.set_down)

    def apply(self, snapshot: Snapshot) -> bool:
        applied = super().apply(snapshot)
        self.checks.update(snapshot)
        return applied

    def purge(self, proxy_id: str, purge: Purge) -> int:
        return int(self.call(self.driver.purge(proxy_id, purge)))

    def stop(self) -> None:
        self.checks.close()
        super().stop()


PORTS = 4  # ports of their own each plane may open (tests/conformance/test_ports.py)


def start(
    name: str,
    directory: Path,
    ca: trustme.CA,
    trusted_proxies: tuple[str, ...],
    listen_policy: ListenPolicy,
) -> Any:
    pair = default_pair(ca, directory)
    if name == "builtin":
        # nginx and HAProxy never verify a TLS backend; the built-in plane verifies
        # against the CA that issued the test origins' certificates.
        ca_file = directory / "upstream-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        settings = dataclasses.replace(
            BUILTIN, trusted_proxies=trusted_proxies, upstream_ca_file=ca_file
        )
        return BuiltinPlane(settings, pair, listen_policy)
    if name == "nginx":
        # nginx OSS has no checks of its own: Portway's verdicts are what hold a member out.
        return CheckedNginx(
            directory / "nginx",
            default_certificate=(str(pair[0]), str(pair[1])),
            trusted_proxies=trusted_proxies,
            listen_policy=listen_policy,
        )
    return HaproxyRunner(
        directory / "haproxy",
        default_certificate=pair,
        trusted_proxies=trusted_proxies,
        listen_policy=listen_policy,
    )


def started(request: pytest.FixtureRequest, ca: trustme.CA, trusted: tuple[str, ...]) -> Plane:
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    directory = factory.mktemp(f"conformance-{request.param}")
    ports = tuple(free_ports(PORTS))
    runner = start(request.param, directory, ca, trusted, policy_for(*ports))
    runner.ports = ports
    request.addfinalizer(runner.stop)
    return runner  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session", params=table.PLANES)
def plane(request: pytest.FixtureRequest, ca: trustme.CA) -> Plane:
    """A data plane with the node defaults."""
    return started(request, ca, ())


@pytest.fixture(scope="session", params=table.PLANES)
def trusting_plane(request: pytest.FixtureRequest, ca: trustme.CA) -> Plane:
    """A data plane that trusts the forwarded headers of loopback peers."""
    return started(request, ca, LOOPBACK)


PLANE_PARAMS = ("plane", "trusting_plane")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A case a plane cannot pass is expected to fail there, with the docs' reason."""
    for item in items:
        marker = item.get_closest_marker("feature")
        callspec = getattr(item, "callspec", None)
        names = [p for p in PLANE_PARAMS if callspec is not None and p in callspec.params]
        if marker is None or callspec is None or not names:
            continue
        reason = table.gap(marker.args[0], callspec.params[names[0]])
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
