"""Balancing and stickiness on every data plane, counted at the origins."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from portway.model import Backend, SessionPersistence
from tests.conformance.client import get, names
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.driver_runner import closed_port

Pair = tuple[Origin, Origin]


@pytest.fixture
def pair(make_origin: Callable[[str], Origin]) -> Pair:
    return make_origin("a"), make_origin("b")


@pytest.mark.feature("round_robin")
def test_round_robin_takes_each_in_turn_whatever_the_weights(plane: Plane, pair: Pair) -> None:
    a, b = pair
    plane.route(proxy_for("app.example.org", a.backend(weight=5), b.backend()))
    assert names(plane.port, "app.example.org", 20) == {b"a": 10, b"b": 10}


@pytest.mark.feature("round_robin")
def test_weights_split_traffic(plane: Plane, pair: Pair) -> None:
    a, b = pair
    plane.route(
        proxy_for(
            "app.example.org",
            a.backend(weight=3),
            b.backend(weight=1),
            algorithm="weighted_round_robin",
        )
    )
    assert names(plane.port, "app.example.org", 40) == {b"a": 30, b"b": 10}


@pytest.mark.feature("least_conn")
def test_least_conn_avoids_the_busy_backend(plane: Plane, pair: Pair) -> None:
    a, b = pair
    plane.route(proxy_for("app.example.org", a.backend(), b.backend(), algorithm="least_conn"))
    slow = threading.Thread(target=get, args=(plane.port, "app.example.org", "/slow"))
    slow.start()
    deadline = time.monotonic() + 5
    while not (a.seen or b.seen) and time.monotonic() < deadline:
        time.sleep(0.005)  # the slow request is at its backend
    busy = b"a" if a.seen else b"b"
    quick = set(names(plane.port, "app.example.org", 6))
    slow.join()
    assert quick == {b"a", b"b"} - {busy}


@pytest.mark.feature("backups")
def test_backup_serves_only_when_no_primary_is_left(
    plane: Plane, make_origin: Callable[[str], Origin]
) -> None:
    primary, backup = make_origin("primary"), make_origin("backup")
    plane.route(proxy_for("app.example.org", primary.backend(), backup.backend(backup=True)))
    assert names(plane.port, "app.example.org", 5) == {b"primary": 5}
    plane.route(
        proxy_for("app.example.org", primary.backend(weight=0), backup.backend(backup=True))
    )
    assert names(plane.port, "app.example.org", 5) == {b"backup": 5}


@pytest.mark.feature("backup_failover")
def test_backup_answers_at_once_when_the_last_primary_refuses(
    plane: Plane, make_origin: Callable[[str], Origin]
) -> None:
    backup = make_origin("backup")
    dead = Backend(id="dead", address="127.0.0.1", port=closed_port())
    plane.route(proxy_for("app.example.org", dead, backup.backend(backup=True)))
    assert names(plane.port, "app.example.org", 5) == {b"backup": 5}


@pytest.mark.feature("hash")
def test_source_ip_and_header_hash_keep_a_key_on_one_backend(plane: Plane, pair: Pair) -> None:
    a, b = pair
    plane.route(
        proxy_for("s.example.org", a.backend(), b.backend(), algorithm="source_ip"),
        proxy_for(
            "h.example.org",
            a.backend(),
            b.backend(),
            algorithm="consistent_hash",
            hash_key="header:X-User",
        ),
    )
    assert len(names(plane.port, "s.example.org", 10)) == 1
    picked = {}
    for user in (f"user{i}" for i in range(12)):
        seen = {get(plane.port, "h.example.org", headers={"X-User": user})[1] for _ in range(4)}
        assert len(seen) == 1, user
        picked[user] = seen.pop().split()[0]
    assert set(picked.values()) == {b"a", b"b"}


@pytest.mark.feature("source_stickiness")
def test_source_ip_persistence_keeps_a_client_on_one_backend(plane: Plane, pair: Pair) -> None:
    a, b = pair
    sticky = SessionPersistence(type="source_ip")
    plane.route(proxy_for("app.example.org", a.backend(), b.backend(), session_persistence=sticky))
    assert len(names(plane.port, "app.example.org", 10)) == 1


@pytest.mark.feature("cookie_stickiness")
def test_cookie_persistence_keeps_a_client_on_one_backend(plane: Plane, pair: Pair) -> None:
    a, b = pair
    sticky = SessionPersistence(type="cookie", cookie_name="PW")
    plane.route(proxy_for("app.example.org", a.backend(), b.backend(), session_persistence=sticky))
    _, first, response = get(plane.port, "app.example.org")
    cookie = response.getheader("Set-Cookie") or ""
    assert cookie.startswith("PW="), cookie
    value = cookie.split(";", 1)[0]
    again = {get(plane.port, "app.example.org", headers={"Cookie": value})[1] for _ in range(8)}
    assert again == {first}
