"""One data plane per parameter, started once per session: the built-in one in process
(tests/dataplane's ``ProxyRunner``), nginx and HAProxy as real daemons in private
prefixes driven through Portway's drivers (tests/drivers' runners).

Every case takes ``plane`` and sees one small interface (``Plane``): ``apply`` a
snapshot and wait until it is served, ``publish``/``route`` to build and apply the next
one, and ``port``/``tls_port`` to send to. A case replaces the whole route table, so
cases never see each other's proxies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import pytest
import trustme

from portway.dataplane import DataPlaneSettings
from portway.model import Certificate, Proxy
from portway.router import Snapshot
from tests.conformance import table
from tests.dataplane.conftest import ProxyRunner, make_origin, origin, ws_origin  # noqa: F401
from tests.dataplane.tls_origin import default_pair
from tests.drivers.conftest import NginxRunner
from tests.drivers.haproxy_runner import HaproxyRunner


class Plane(Protocol):
    """What a conformance case asks of a data plane."""

    port: int
    tls_port: int

    def snapshot(self, proxies: Iterable[Proxy], certs: Iterable[Certificate] = ()) -> Snapshot:
        """The next version of the whole configuration."""

    def apply(self, snapshot: Snapshot) -> bool:
        """Serve ``snapshot``; True once it is served, False if it was refused."""

    def publish(self, proxies: Iterable[Proxy], certs: Iterable[Certificate] = ()) -> bool: ...

    def route(self, *proxies: Proxy) -> None:
        """Publish ``proxies`` and fail the case if the plane refuses them."""

    def stop(self) -> None: ...


# The built-in plane's read timeout covers the origin's /slow (2 s), as nginx's and
# HAProxy's defaults do.
BUILTIN = DataPlaneSettings(
    connect_timeout=1.0, read_timeout=5.0, client_header_timeout=1.0, keepalive_timeout=5.0
)


def start(name: str, directory: Path, pair: tuple[Path, Path]) -> Plane:
    if name == "builtin":
        return ProxyRunner(BUILTIN, default_certificate=pair)
    if name == "nginx":
        return NginxRunner(directory / "nginx", default_certificate=(str(pair[0]), str(pair[1])))
    return HaproxyRunner(directory / "haproxy", default_certificate=pair)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session", params=table.PLANES)
def plane(
    request: pytest.FixtureRequest, ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plane]:
    directory = tmp_path_factory.mktemp(f"conformance-{request.param}")
    runner = start(request.param, directory, default_pair(ca, directory))
    yield runner
    runner.stop()


@pytest.fixture
def plane_name(request: pytest.FixtureRequest, plane: Plane) -> str:
    return str(request.node.callspec.params["plane"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A case a plane cannot pass is expected to fail there, with the docs' reason."""
    for item in items:
        marker = item.get_closest_marker("feature")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None or "plane" not in callspec.params:
            continue
        reason = table.gap(marker.args[0], callspec.params["plane"])
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
