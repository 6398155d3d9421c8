"""The Toolforge registration protocol parser: the real client's bytes, partial reads,
and every refusal of compat.md §2."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.errors import RemoteProtocolError
from portway.protocol.registration import MAX_LINE, Destination, parse, parse_destination


def test_the_real_clients_register_canonical_is_one_request() -> None:
    reg = parse(b"registerCanonical\n.*\nhttp://10.0.0.9:4242\n")
    assert reg is not None
    assert (reg.command, reg.route, reg.canonical) == ("registerCanonical", ".*", True)
    assert reg.destination == Destination("http", "10.0.0.9", 4242, "http://10.0.0.9:4242")


def test_unregister_has_no_destination() -> None:
    reg = parse(b"unregister\n.*\n")
    assert reg is not None and reg.destination is None and not reg.canonical


def test_a_bare_ip_port_destination_means_http() -> None:
    reg = parse(b"register\n/foo.*\n10.0.0.9:4242\n")
    assert reg is not None and reg.destination is not None
    assert (reg.destination.scheme, reg.destination.text) == ("http", "10.0.0.9:4242")


def test_partial_reads_wait_for_the_last_newline() -> None:
    data = b"register\n.*\nhttp://10.0.0.9:4242\n"
    for cut in range(len(data)):
        assert parse(data[:cut]) is None
    assert parse(data) is not None


def test_crlf_line_ends_are_accepted() -> None:
    reg = parse(b"unregister\r\n.*\r\n")
    assert reg is not None and reg.route == ".*"


@pytest.mark.parametrize(
    "data",
    [
        b"hello\n",
        b"REGISTER\n.*\nhttp://10.0.0.9:1\n",
        b"register\n\nhttp://10.0.0.9:1\n",
        b"register\n.*\nhttp://10.0.0.9:1\nextra\n",
        b"unregister\n.*\ntrailing",
        b"register\n.*\nftp://10.0.0.9:21\n",
        b"register\n.*\nhttp://10.0.0.9\n",
        b"register\n.*\nhttp://10.0.0.9:99999\n",
        b"register\n.*\nhttp://10.0.0.9:80/path\n",
        b"register\n.*\nhttp://user@10.0.0.9:80\n",
        b"register\n.*\nexample.org:80\n",
        b"register\n.\x01*\nhttp://10.0.0.9:80\n",
        b"register\n\xff\nhttp://10.0.0.9:80\n",
    ],
)
def test_malformed_requests_are_refused(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse(data)


def test_an_overlong_line_is_refused_before_it_ends() -> None:
    with pytest.raises(RemoteProtocolError):
        parse(b"register\n" + b"a" * (MAX_LINE + 1))
    assert parse(b"register\n" + b"a" * MAX_LINE) is None


def test_ipv6_destinations_are_bracketed() -> None:
    dest = parse_destination("http://[fd00::5]:8000")
    assert (dest.host, dest.port) == ("fd00::5", 8000)


@given(st.binary(max_size=200))
def test_any_bytes_give_a_request_none_or_a_protocol_error(data: bytes) -> None:
    try:
        reg = parse(data)
    except RemoteProtocolError:
        return
    if reg is not None:
        assert reg.route and all(0x20 <= ord(c) < 0x7F for c in reg.route)


def test_a_leading_token_line_carries_the_secret() -> None:
    reg = parse(b"token s3cret\nregister\n.*\nhttp://10.0.0.9:4242\n")
    assert reg is not None and reg.token == "s3cret" and reg.command == "register"
    assert parse(b"token s3cret\n") is None
    with pytest.raises(RemoteProtocolError):
        parse(b"token \nregister\n.*\nhttp://10.0.0.9:4242\n")
