"""Client limits on every plane: a client over its proxy's rate gets Portway's 429 page
with ``Retry-After`` while another client address is not held back, and a banned range
gets Portway's 403 page; neither refusal reaches the backend. Each client is a loopback
source address of its own, and each case a hostname (and so a proxy) of its own, so the
planes' counters never carry from one case to the next."""

from __future__ import annotations

import pytest

from portway.model import Limits
from tests.conformance.client import get, page_body
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for


@pytest.mark.feature("rate_limits")
def test_a_client_over_its_rate_gets_429_and_another_client_does_not(
    plane: Plane, origin: Origin
) -> None:
    host = "rate.example.org"
    plane.route(proxy_for(host, origin.backend(), limits=Limits(rate=0.5, burst=2)))
    codes = [get(plane.port, host, source="127.0.0.2")[0] for _ in range(2)]
    status, body, response = get(plane.port, host, source="127.0.0.2")
    assert [*codes, status] == [200, 200, 429]
    assert body == page_body(429)
    retry_after = response.getheader("Retry-After") or ""
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
    assert get(plane.port, host, source="127.0.0.3")[0] == 200
    assert len(origin.seen) == 3  # the refused request never reached it


@pytest.mark.feature("rate_limits")
def test_the_burst_passes_back_to_back(plane: Plane, origin: Origin) -> None:
    host = "burst.example.org"
    plane.route(proxy_for(host, origin.backend(), limits=Limits(rate=1, burst=5)))
    codes = [get(plane.port, host, source="127.0.0.4")[0] for _ in range(6)]
    assert codes == [200] * 5 + [429]


@pytest.mark.feature("deny")
def test_a_banned_range_gets_the_403_page_and_never_reaches_the_backend(
    plane: Plane, origin: Origin
) -> None:
    host = "deny.example.org"
    banned = Limits(deny=("127.0.0.8/30", "2001:db8::/32"))  # 127.0.0.8 to .11
    plane.route(proxy_for(host, origin.backend(), limits=banned))
    status, body, _ = get(plane.port, host, source="127.0.0.9")
    assert (status, body) == (403, page_body(403))
    assert origin.seen == []
    assert get(plane.port, host, source="127.0.0.12")[0] == 200
    assert len(origin.seen) == 1
