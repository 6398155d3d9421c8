"""Field rules applied by the service, tested on values alone."""

from __future__ import annotations

import pytest

from portway.errors import ValidationError
from portway.model import HealthCheck, Proxy
from portway.service import validation


@pytest.mark.parametrize("value", [1, 80, 65535])
def test_ports_in_range_pass(value: int) -> None:
    assert validation.port(value, "port") == value


@pytest.mark.parametrize("value", [0, -1, 65536, True])
def test_ports_out_of_range_name_the_field(value: int) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.port(value, "backends[0].port")
    assert caught.value.field == "backends[0].port"


@pytest.mark.parametrize(("value", "ok"), [(0, True), (256, True), (257, False), (-1, False)])
def test_weight_range_is_0_to_256(value: int, ok: bool) -> None:
    if ok:
        assert validation.weight(value) == value
    else:
        with pytest.raises(ValidationError):
            validation.weight(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.5", "10.0.0.5"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("Backend.SVC.", "backend.svc"),
        ("my_container", "my_container"),
    ],
)
def test_backend_addresses_are_ip_literals_or_hostnames(value: str, expected: str) -> None:
    assert validation.address(value) == expected


@pytest.mark.parametrize("value", ["", "bad host", "-x.org", "a..b", "x" * 64])
def test_bad_backend_addresses_are_rejected(value: str) -> None:
    with pytest.raises(ValidationError):
        validation.address(value)


def test_proxy_is_normalised() -> None:
    proxy = Proxy(id="x", project="p", hostname="WWW.Example.ORG.", path_prefix="/a/b/")
    result = validation.proxy(proxy)
    assert (result.hostname, result.path_prefix) == ("www.example.org", "/a/b")


@pytest.mark.parametrize(
    ("check", "field"),
    [
        (HealthCheck(type="udp"), "health_check.type"),
        (HealthCheck(path="x"), "health_check.path"),
        (HealthCheck(interval=0), "health_check.interval"),
        (HealthCheck(rise=0), "health_check.rise"),
        (HealthCheck(expected_codes="ok"), "health_check.expected_codes"),
    ],
)
def test_bad_health_checks_name_the_subfield(check: HealthCheck, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.health_check(check)
    assert caught.value.field == field


@pytest.mark.parametrize("name", ["projects", "zones", "-x", "a b", "x" * 65])
def test_project_names_reject_reserved_and_malformed(name: str) -> None:
    with pytest.raises(ValidationError):
        validation.project_name(name)
