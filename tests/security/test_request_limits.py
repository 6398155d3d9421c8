"""Issue 7, defect 9: request limits that are exact, and hostnames that are names.

``--max-request-line 8192`` counted only the request target (a request line of 8 205
bytes got through) and the head limit let 32 786 bytes through instead of 32 768. The
request line is now ``method SP request-target SP HTTP-version`` without its CRLF (as
nginx counts it); the head is every byte from the request line's first to the blank
line's last, CRLFs included. Each limit is tested at its exact boundary: the limit is
accepted, one byte more is refused.

IP literals (``127.0.0.1``, ``10.0.0.1``, ``1.2``) were accepted as proxy hostnames; a
URL parser reads a name whose last label is numeric as an IPv4 address (WHATWG URL host
parser, "ends in a number"; RFC 1123 §2.1), so such names are refused with 422.
"""

from __future__ import annotations

import pytest

from portway.errors import ValidationError
from portway.model import normalize_hostname
from tests.api.conftest import Api, assert_error

# -- hostnames ---------------------------------------------------------------------------

NOT_HOSTNAMES = [
    "127.0.0.1",
    "10.0.0.1",
    "1.2",
    "0x7f.1",
    "4294967295.0",
    "app.123",
    "*.10.0.0",
    "*.1.2",
    "app.0x1f",
    "app.0X1F",
    "app.0x",
    "127.0.0.1.",
    "::1",
    "[::1]",
    "[2001:db8::1]",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "fe80::1%25eth0",
]


@pytest.mark.parametrize("raw", NOT_HOSTNAMES)
def test_ip_literals_and_numeric_last_labels_are_not_hostnames(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        normalize_hostname(raw)
    assert info.value.field == "hostname"


@pytest.mark.parametrize(
    "raw", ["1.example.org", "10.0.0.example", "0x1f.example.org", "a1.b2", "app.x0", "app.1a"]
)
def test_names_with_numeric_labels_before_the_last_are_still_hostnames(raw: str) -> None:
    assert normalize_hostname(raw) == raw


@pytest.mark.parametrize("raw", ["127.0.0.1", "1.2", "[::1]", "*.10.0.0"])
def test_the_api_refuses_an_ip_literal_hostname_with_422(api: Api, raw: str) -> None:
    body = {"proxy": {"hostname": raw, "backends": [{"address": "127.0.0.1", "port": 8080}]}}
    r = api.client.post("/v1/alpha/proxies", json=body, headers=api.member)
    assert_error(r, 422, "hostname")


def test_an_ip_literal_is_not_a_zone_either(api: Api) -> None:
    r = api.client.post("/v1/zones", json={"zone": {"name": "10.0.0.1"}}, headers=api.admin)
    assert_error(r, 422, "name")
    r = api.client.post("/v1/zones", json={"zone": {"name": "0.10"}}, headers=api.admin)
    assert_error(r, 422, "name")


def test_a_numeric_proxy_reference_is_simply_not_found(api: Api) -> None:
    r = api.client.get("/v1/alpha/proxies/10.0.0.1", headers=api.member)
    assert_error(r, 404)
