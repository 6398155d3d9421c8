"""Active health checks, where a data plane has them: a backend that fails its HTTP
check gets no traffic, though it accepts connections and answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from portway.model import Backend, HealthCheck
from tests.conformance.client import get
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for
from tests.dataplane.test_health import RawBackend


@pytest.fixture
def failing() -> Iterator[RawBackend]:
    backend = RawBackend(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    yield backend
    backend.sock.close()


@pytest.mark.feature("active_health")
def test_a_backend_failing_its_http_check_gets_no_traffic(
    plane: Plane, make_origin: Callable[[str], Origin], failing: RawBackend
) -> None:
    good = make_origin("good")
    bad = Backend(id="bad", address="127.0.0.1", port=failing.port)
    check = HealthCheck(path="/h", interval=0.2, timeout=0.5, rise=1, fall=1)
    plane.route(proxy_for("app.example.org", good.backend(), bad, health_check=check))
    deadline = time.monotonic() + 5
    while not (failing.requests and any(s.path == "/h" for s in good.seen)):
        assert time.monotonic() < deadline, "no probe reached the backends"
        time.sleep(0.05)
    time.sleep(0.6)  # a few probe rounds: the failing one is down
    assert [get(plane.port, "app.example.org")[0] for _ in range(10)] == [200] * 10
    probe = next(s for s in good.seen if s.path == "/h")
    assert (probe.method, probe.header("Host")) == ("GET", "app.example.org")
