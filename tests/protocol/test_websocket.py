"""The WebSocket handshake checks, with bytes alone."""

from __future__ import annotations

import pytest

from portway.errors import RemoteProtocolError
from portway.protocol import websocket as ws

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def test_accept_matches_the_rfc_6455_example() -> None:
    assert ws.accept_for(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_request_returns_its_key() -> None:
    key = ws.check_request(
        method=b"GET", http10=False, connection_upgrade=True, key=KEY + b" ", version=b"13"
    )
    assert key == KEY


@pytest.mark.parametrize(
    "changes",
    [
        {"method": b"POST"},
        {"http10": True},
        {"connection_upgrade": False},
        {"key": None},
        {"key": b"not base64!"},
        {"key": b"c2hvcnQ="},
        {"version": b"8"},
        {"version": None},
    ],
)
def test_invalid_request_is_refused_with_400(changes: dict[str, object]) -> None:
    args: dict[str, object] = {
        "method": b"GET",
        "http10": False,
        "connection_upgrade": True,
        "key": KEY,
        "version": b"13",
        **changes,
    }
    with pytest.raises(RemoteProtocolError) as err:
        ws.check_request(**args)  # type: ignore[arg-type]
    assert err.value.status == 400


def test_only_websocket_upgrades_are_wanted() -> None:
    assert ws.wants_websocket(b"WebSocket")
    assert ws.wants_websocket(b"foo, websocket")
    assert not ws.wants_websocket(b"h2c")


def test_response_must_carry_the_right_accept_and_upgrade() -> None:
    good = ws.accept_for(KEY)
    assert ws.response_accepts(KEY, upgrade=b"websocket", accept=good)
    assert not ws.response_accepts(KEY, upgrade=b"websocket", accept=b"wrong")
    assert not ws.response_accepts(KEY, upgrade=None, accept=good)
    assert not ws.response_accepts(KEY, upgrade=b"h2c", accept=good)
