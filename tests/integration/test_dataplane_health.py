"""Portway's active health checks drive nginx and HAProxy through a real ``portway serve
--dataplane nginx|haproxy``: a killed backend is marked down by Portway's check, the
plane stops sending to it (nginx: the member rendered ``down`` and reloaded; HAProxy:
``set server … state maint`` through the Runtime API, no reload), and it comes back
when the check sees it up again."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from portway.drivers.haproxy_syntax import backend_name
from tests.drivers.conftest import NGINX
from tests.drivers.haproxy_runner import HAPROXY
from tests.http_server import TestHTTPServer
from tests.integration.harness import (
    Backend,
    Portway,
    _handler_class,
    create_project_and_proxy,
    wait_routed,
)

CHECK = {"path": "/", "interval": 0.2, "timeout": 0.5, "rise": 1, "fall": 2}
PLANES = {
    "nginx": ["--dataplane", "nginx", "--nginx-binary", NGINX],
    "haproxy": ["--dataplane", "haproxy", "--haproxy-binary", HAPROXY],
}


class Restartable:
    """A backend that can be killed (its socket closed: connections refused) and started
    again on the same port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self.seen: list[dict[str, object]] = []
        self.server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        server = TestHTTPServer(("127.0.0.1", self.port), _handler_class(self.name, self.seen))
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server

    def kill(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None


@pytest.fixture(params=sorted(PLANES))
def plane(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Portway, Path]]:
    kind = request.param
    prefix = tmp_path / kind
    pw = Portway(tmp_path / "data", extra=[*PLANES[kind], f"--{kind}-prefix", str(prefix)])
    pw.start()
    yield kind, pw, prefix
    pw.stop()


def _health(pw: Portway, proxy_id: str, port: int) -> str:
    listed = pw.api("GET", f"/v1/alpha/proxies/{proxy_id}/backends").json()["backends"]
    return str(next(b["health"] for b in listed if b["port"] == port))


def _until(what: Callable[[], bool], message: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def _held_down(kind: str, prefix: Path, proxy_id: str, port: int) -> bool:
    """Whether the plane itself holds the member out because Portway said so."""
    if kind == "nginx":
        text = "".join(p.read_text() for p in (prefix / "conf" / "sites-available").iterdir())
        return f'127.0.0.1:{port}" down;' in text or f"127.0.0.1:{port} down;" in text
    return _haproxy_admin_state(prefix, proxy_id, port) & 1 == 1  # SRV_ADMF_FMAINT


def _haproxy_admin_state(prefix: Path, proxy_id: str, port: int) -> int:
    name = backend_name(proxy_id)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(prefix / "run" / "admin.sock"))
        sock.sendall(f"show servers state {name}\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = next(line for line in lines if line.startswith("# be_id")).lstrip("# ").split()
    for line in lines:
        fields = line.split()
        if len(fields) == len(header) and fields[0].isdigit():
            row = dict(zip(header, fields, strict=True))
            if row["srv_port"] == str(port) and row["srv_addr"] == "127.0.0.1":
                return int(row["srv_admin_state"])
    raise AssertionError(f"no server 127.0.0.1:{port} in {name}: {lines}")


def _reloads(kind: str, prefix: Path) -> int:
    if kind == "nginx":
        return 0
    from tests.integration.test_dataplane_haproxy import _reloads as haproxy_reloads

    return haproxy_reloads(prefix)


def test_a_backend_portway_marks_down_gets_no_traffic_until_it_is_up_again(
    plane: tuple[str, Portway, Path], backends: list[Backend]
) -> None:
    kind, pw, prefix = plane
    flaky = Restartable("flaky")
    try:
        proxy = create_project_and_proxy(
            pw, "alpha", "hc.alpha.test", [backends[0].port, flaky.port], health_check=CHECK
        )
        wait_routed(pw, "hc.alpha.test", timeout=20)
        _until(lambda: _health(pw, proxy["id"], flaky.port) == "up", "never up")
        served = {pw.get("hc.alpha.test").json()["backend"] for _ in range(10)}
        assert served == {"b0", "flaky"}
        reloads = _reloads(kind, prefix)

        flaky.kill()
        _until(lambda: _health(pw, proxy["id"], flaky.port) == "down", "never marked down")
        _until(lambda: _held_down(kind, prefix, proxy["id"], flaky.port), "verdict not pushed")
        time.sleep(1.0)  # nginx: the reload that carries the verdict is confirmed
        answers = [pw.get("hc.alpha.test") for _ in range(40)]
        assert [r.status_code for r in answers] == [200] * 40
        assert {r.json()["backend"] for r in answers} == {"b0"}
        if kind == "haproxy":  # the Runtime API, not a reload
            assert _reloads(kind, prefix) == reloads

        flaky.start()
        _until(lambda: _health(pw, proxy["id"], flaky.port) == "up", "never up again")
        _until(lambda: not _held_down(kind, prefix, proxy["id"], flaky.port), "not released")
        _until(
            lambda: pw.get("hc.alpha.test").json()["backend"] == "flaky",
            "traffic never returned to the backend",
        )
    finally:
        if flaky.server is not None:
            flaky.kill()
