"""Reading the server name of a ClientHello without terminating TLS: real hellos from
Python's ssl module, every truncation, and mutated bytes (hypothesis)."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portway.errors import RemoteProtocolError
from portway.protocol.client_hello import MAX_HELLO, NEED_MORE, NO_NAME, SniReader, server_name


def client_hello(sni: str | None) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


HELLO = client_hello("API.Example.org")


def test_a_real_hello_gives_its_name_lower_cased() -> None:
    assert SniReader().feed(HELLO) == "api.example.org"


def test_a_hello_without_sni_has_no_name() -> None:
    assert SniReader().feed(client_hello(None)) == NO_NAME


def test_a_hello_fed_byte_by_byte_and_split_over_records() -> None:
    reader = SniReader()
    results = [reader.feed(HELLO[i : i + 1]) for i in range(len(HELLO))]
    assert results[:-1] == [NEED_MORE] * (len(HELLO) - 1) and results[-1] == "api.example.org"
    assert reader.received == HELLO
    # The same handshake message in two records of its own (RFC 8446 §5.1 allows it).
    body = HELLO[5:]
    half = len(body) // 2
    split = b"".join(
        b"\x16\x03\x01" + len(part).to_bytes(2, "big") + part for part in (body[:half], body[half:])
    )
    assert SniReader().feed(split) == "api.example.org"


@pytest.mark.parametrize("cut", range(1, len(HELLO)))
def test_every_truncation_asks_for_more(cut: int) -> None:
    assert SniReader().feed(HELLO[:cut]) == NEED_MORE


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # plain HTTP on a passthrough port
        b"\x17\x03\x03\x00\x05hello",  # application data first
        b"\x16\x03\x01\x00\x00",  # an empty record
        b"\x16\x03\x01\xff\xff",  # a record larger than any hello
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",  # a ServerHello
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",  # a hello body too short
    ],
)
def test_what_is_not_a_client_hello_is_refused(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        SniReader().feed(data)


def _with_name(raw_name: bytes) -> bytes:
    """A minimal hello body whose server_name is ``raw_name``."""
    entry = b"\x00" + len(raw_name).to_bytes(2, "big") + raw_name
    names = len(entry).to_bytes(2, "big") + entry
    ext = b"\x00\x00" + len(names).to_bytes(2, "big") + names
    return (
        b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
        + len(ext).to_bytes(2, "big") + ext
    )  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [b"a\x00b.example.org", b"a b.example.org", b"\xc3\xa9.example.org", b"", b"*.example.org"],
)
def test_names_no_hostname_has_are_refused(name: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        server_name(_with_name(name))


def test_a_trailing_dot_is_dropped() -> None:
    assert server_name(_with_name(b"Api.Example.org.")) == "api.example.org"


def test_a_hello_larger_than_the_limit_is_refused() -> None:
    body = b"\x01" + (MAX_HELLO + 1).to_bytes(3, "big")
    with pytest.raises(RemoteProtocolError):
        SniReader().feed(b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_hellos_give_a_name_more_or_a_refusal_never_a_crash(data: st.DataObject) -> None:
    raw = bytearray(HELLO)
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    try:
        got = SniReader().feed(bytes(raw[:cut]))
    except RemoteProtocolError:
        return
    assert isinstance(got, str)
