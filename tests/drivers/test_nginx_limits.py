"""How client limits are written for nginx: the rate's unit, the burst, the zone."""

from __future__ import annotations

import pytest

from portway.drivers.nginx_limits import location_lines, nginx_rate, zone_lines, zone_name
from portway.model import Limits, Proxy


@pytest.mark.parametrize(
    ("rate", "text"),
    [(5, "5r/s"), (5.0, "5r/s"), (2.5, "150r/m"), (0.5, "30r/m"), (1 / 7, "9r/m"), (0.001, "1r/m")],
)
def test_rates_are_whole_requests_a_second_or_a_minute(rate: float, text: str) -> None:
    assert nginx_rate(rate) == text


def _proxy(limits: Limits) -> Proxy:
    return Proxy(id="p1", project="p", hostname="a.example.org", limits=limits)


def test_a_proxy_with_a_rate_and_ranges() -> None:
    proxy = _proxy(Limits(rate=10, burst=20, deny=("192.0.2.0/24",)))
    zone = zone_name(proxy)
    assert zone_lines(proxy) == f"limit_req_zone $binary_remote_addr zone={zone}:1m rate=10r/s;\n"
    assert location_lines(proxy, "") == [
        'deny "192.0.2.0/24";\n',
        f"limit_req zone={zone} burst=19 nodelay;\n",
        "limit_req_status 429;\n",
    ]


def test_a_burst_of_one_is_nginxs_default_and_no_limits_write_nothing() -> None:
    one = _proxy(Limits(rate=0.5, burst=1))
    assert location_lines(one, "")[0] == f"limit_req zone={zone_name(one)};\n"
    none = _proxy(Limits())
    assert (zone_lines(none), location_lines(none, "")) == ("", [])
