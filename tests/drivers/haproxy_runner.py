"""A real HAProxy (Debian's package, /usr/sbin/haproxy) driven by HaproxyDriver in a
private prefix under tmp_path (config, pid, master and stats sockets), on free loopback
ports. The runner: tests/drivers/driver_runner.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portway.drivers import haproxy_runtime as runtime
from portway.drivers.haproxy import HaproxyDriver, HaproxySettings
from portway.drivers.haproxy_options import HaproxyOptions
from portway.model.listen_policy import ListenPolicy
from tests.dataplane.tls_origin import default_pair  # noqa: F401 (re-export)
from tests.drivers.driver_runner import DriverRunner, closed_port, free_port  # noqa: F401 (closed_port: re-export)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class HaproxyRunner(DriverRunner):
    """An HaproxyDriver on its own asyncio thread, in a private prefix on free ports."""

    def __init__(
        self,
        prefix: Path,
        *,
        default_certificate: tuple[Path, Path] | None = None,
        trusted_proxies: tuple[str, ...] = (),
        coalesce: float = 0.05,
        spare_slots: int = 4,
        external: bool = False,
        listen_policy: ListenPolicy | None = None,
        **options: Any,
    ) -> None:
        """``options``: further HaproxyOptions fields (the node-wide client limits)."""
        port, tls_port = free_port(), free_port() if default_certificate else 0
        options = HaproxyOptions(
            http=(("127.0.0.1", port),),
            https=(("127.0.0.1", tls_port),) if default_certificate else (),
            trusted_proxies=trusted_proxies,
            threads=1,
            spare_slots=spare_slots,
            hard_stop_after=5.0,
            listen_policy=listen_policy or ListenPolicy(),
            **options,
        )
        settings = HaproxySettings(
            prefix=prefix,
            binary=HAPROXY,
            options=options,
            coalesce=coalesce,
            default_certificate=default_certificate,
            external=external,
        )
        self.driver: HaproxyDriver
        super().__init__(HaproxyDriver(settings), port, tls_port)

    def processes(self) -> runtime.Processes:
        """The master's own account: its reload counter and its workers."""
        return self.call(runtime.processes(self.driver.master_socket))  # type: ignore[no-any-return]

    def ask(self, command: str) -> str:
        return self.call(runtime.ask(self.driver.stats_socket, command))  # type: ignore[no-any-return]


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
