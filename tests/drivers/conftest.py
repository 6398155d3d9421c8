"""A real nginx (Debian's package, /usr/sbin/nginx) driven by NginxDriver in a private
prefix under tmp_path, on free loopback ports (the runner: tests/drivers/driver_runner.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portway.drivers.nginx import NginxDriver, NginxSettings
from portway.drivers.nginx_options import NginxOptions
from portway.model.listen_policy import ListenPolicy
from tests.dataplane.conftest import make_origin, origin, ws_origin  # noqa: F401 (fixtures)
from tests.dataplane.test_stream import make_echo  # noqa: F401 (fixture)
from tests.dataplane.tls_origin import ca, certificate, make_tls_origin  # noqa: F401 (fixtures)
from tests.drivers.driver_runner import DriverRunner, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class NginxRunner(DriverRunner):
    """An NginxDriver on its own asyncio thread, in a private prefix on free ports."""

    def __init__(
        self,
        prefix: Path,
        *,
        default_certificate: tuple[str, str] | None = None,
        trusted_proxies: tuple[str, ...] = (),
        forwarded_for: bool = True,
        coalesce: float = 0.05,
        listen_policy: ListenPolicy | None = None,
        user: str | None = "root" if os.geteuid() == 0 else None,
    ) -> None:
        port, tls_port = free_port(), free_port() if default_certificate else 0
        options = NginxOptions(
            listen_policy=listen_policy or ListenPolicy(),
            http=(("127.0.0.1", port),),
            https=(("127.0.0.1", tls_port),) if default_certificate else (),
            default_certificate=default_certificate,
            trusted_proxies=trusted_proxies,
            forwarded_for=forwarded_for,
            worker_processes="2",
            # pytest's tmp_path is 0700: run as root, nginx's workers (nobody by
            # default) could not reach the cache under the prefix.
            user=user,
        )
        settings = NginxSettings(prefix=prefix, binary=NGINX, options=options, coalesce=coalesce)
        self.driver: NginxDriver
        super().__init__(NginxDriver(settings), port, tls_port)


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


# The HAProxy runner's fixtures (tests/drivers/haproxy_runner.py), for every test here.
from tests.drivers.haproxy_runner import haproxy, make_haproxy  # noqa: E402, F401
