"""TLS backends (``backends[].tls``) on every data plane."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conformance.client import get
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for


@pytest.mark.feature("tls_backends")
def test_a_tls_backend_is_reached_over_tls_and_plain_ones_stay_plain(
    plane: Plane, make_tls_origin: Callable[..., Origin], origin: Origin
) -> None:
    secure = make_tls_origin("secure")
    plane.route(
        proxy_for("app.example.org", secure.backend(tls=True)),
        proxy_for("plain.example.org", origin.backend()),
    )
    assert get(plane.port, "app.example.org", "/x")[:2] == (200, b"secure /x 0")
    assert [s.path for s in secure.seen] == ["/x"]
    assert get(plane.port, "plain.example.org")[:2] == (200, b"one / 0")
