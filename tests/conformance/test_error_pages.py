"""The pages a data plane answers itself are Portway's, byte for byte, on every plane."""

from __future__ import annotations

import pytest

from portway.model import Backend, Limits
from tests.conformance.client import get, page_body, raw, status_of
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.driver_runner import closed_port

H = b"Host: app.example.org\r\n"


@pytest.mark.feature("error_pages")
def test_proxy_without_backends_gets_the_503_page_with_retry_after(plane: Plane) -> None:
    plane.route(proxy_for("empty.example.org"))
    status, body, response = get(plane.port, "empty.example.org")
    assert (status, body) == (503, page_body(503))
    assert response.getheader("Retry-After") == "5"


@pytest.mark.feature("refused_502")
def test_refused_backend_gets_the_502_page(plane: Plane) -> None:
    dead = Backend(id="d", address="127.0.0.1", port=closed_port())
    plane.route(proxy_for("dead.example.org", dead))
    status, body, _ = get(plane.port, "dead.example.org")
    assert (status, body) == (502, page_body(502))


@pytest.mark.feature("max_body")
def test_declared_body_over_the_limit_gets_the_413_page_and_is_not_forwarded(
    plane: Plane, origin: Origin
) -> None:
    plane.route(proxy_for("app.example.org", origin.backend(), limits=Limits(max_body_bytes=10)))
    big = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 11\r\nConnection: close\r\n\r\nhello world"
    response, _ = raw(plane.port, big)
    assert status_of(response) == 413 and response.endswith(page_body(413))
    small = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"
    assert raw(plane.port, small)[0].endswith(b"one / 5")
    assert [s.body_len for s in origin.seen] == [5]


@pytest.mark.feature("head_limits")
def test_too_long_a_request_line_gets_the_414_page(plane: Plane, origin: Origin) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    response, closed = raw(plane.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert status_of(response) == 414 and response.endswith(page_body(414)) and closed
    assert origin.seen == []


@pytest.mark.feature("head_limits")
def test_too_large_a_header_block_gets_the_431_page(plane: Plane, origin: Origin) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(400))
    response, closed = raw(plane.port, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n")
    assert status_of(response) == 431 and response.endswith(page_body(431)) and closed
    assert origin.seen == []


@pytest.mark.feature("error_pages")
@pytest.mark.parametrize("path", ["/./portway/414", "/%2E/portway/400", "/portway/414"])
def test_a_client_never_reaches_a_page_location(plane: Plane, origin: Origin, path: str) -> None:
    """nginx keeps the 400 and 414 pages at ``/./portway/<status>``, a URI no request
    has once nginx has normalised it: such a path is the tenant's, like any other."""
    plane.route(proxy_for("app.example.org", origin.backend()))
    status, body, _ = get(plane.port, "app.example.org", path)
    assert status == 200 and body.startswith(b"one /")
