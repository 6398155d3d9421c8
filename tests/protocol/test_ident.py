"""RFC 1413 replies as real daemons write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.errors import RemoteProtocolError
from portway.protocol.ident import parse_reply, query


def test_the_query_names_both_ports() -> None:
    assert query(56674, 8282) == b"56674,8282\r\n"


@pytest.mark.parametrize(
    "line",
    [
        b"56674,8282:USERID:UNIX:tools.alpha\r\n",  # Debian's oidentd
        b"56674 , 8282 : USERID : UNIX : tools.alpha\r\n",  # RFC 1413's example spacing
        b"56674,8282 : USERID : UNIX,US-ASCII : tools.alpha\n",
    ],
)
def test_userid_replies_with_or_without_spaces(line: bytes) -> None:
    reply = parse_reply(line, 56674, 8282)
    assert reply is not None and reply.user == "tools.alpha" and reply.error is None


def test_error_replies_carry_the_reason() -> None:
    reply = parse_reply(b"56674,8282 : ERROR : NO-USER\r\n", 56674, 8282)
    assert reply is not None and reply.user is None and reply.error == "NO-USER"


def test_an_incomplete_line_waits() -> None:
    assert parse_reply(b"56674,8282:USERID:UNIX:tools", 56674, 8282) is None


@pytest.mark.parametrize(
    "line",
    [
        b"1,8282:USERID:UNIX:tools.alpha\r\n",  # another connection's ports
        b"56674,8282:USERID:UNIX:\r\n",
        b"56674,8282:SOMETHING:x\r\n",
        b"garbage\r\n",
        b"56674,8282:USERID:UNIX:to\0ols\r\n",
        b"56674,8282:USERID:UNIX:\xfftools\r\n",
        b"x" * 1001,
    ],
)
def test_malformed_or_foreign_replies_are_refused(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_reply(line, 56674, 8282)


@given(st.binary(max_size=300))
def test_any_bytes_give_a_reply_none_or_a_protocol_error(data: bytes) -> None:
    try:
        reply = parse_reply(data, 1, 2)
    except RemoteProtocolError:
        return
    if reply is not None:
        assert (reply.user is None) != (reply.error is None)
