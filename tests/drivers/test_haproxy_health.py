"""HAProxy's own active health checks on the members Portway renders (the data planes'
shared behaviour is in tests/conformance)."""

from __future__ import annotations

import time
from collections.abc import Callable

from portway.model import Backend, HealthCheck
from tests.conformance.client import get
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.haproxy_runner import HaproxyRunner, closed_port


def test_active_http_check_ejects_a_failing_backend(
    haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]
) -> None:
    good = make_origin("good")
    dead = Backend(id="dead", address="127.0.0.1", port=closed_port())
    check = HealthCheck(path="/h", interval=0.2, timeout=0.5, rise=1, fall=1)
    haproxy.route(proxy_for("app.example.org", good.backend(), dead, health_check=check))
    deadline = time.monotonic() + 5
    while "/h" not in {s.path for s in good.seen} and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few probe rounds: the dead one is marked down
    assert {get(haproxy.port, "app.example.org")[0] for _ in range(10)} == {200}
    probe = next(s for s in good.seen if s.path == "/h")
    assert probe.method == "GET" and probe.header("Host") == "app.example.org"
    # srv_op_state (6th field): 2 running, 0 stopped by its checks.
    rows = [line.split() for line in haproxy.ask("show servers state").splitlines()[2:]]
    assert [r[5] for r in rows if len(r) > 5 and r[3] in ("s1", "s2")] == ["2", "0"]
