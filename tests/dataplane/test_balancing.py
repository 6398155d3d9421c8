"""Balancing and session persistence, measured through the real proxy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from portway.model import ALGORITHMS, SessionPersistence
from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for

HOST = {"Host": "app.example.org"}


def served_by(client: httpx.Client, port: int, path: str = "/", **headers: str) -> str:
    response = client.get(f"http://127.0.0.1:{port}{path}", headers={**HOST, **headers})
    assert response.status_code == 200, response.text
    return response.text.split(" ", 1)[0]


@pytest.fixture
def pair(make_origin: Callable[[str], Origin]) -> tuple[Origin, Origin]:
    return make_origin("a"), make_origin("b")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_serves_from_every_backend(
    make_proxy: Callable[..., ProxyRunner], pair: tuple[Origin, Origin], algorithm: str
) -> None:
    a, b = pair
    runner = make_proxy()
    runner.route(
        proxy_for(
            "app.example.org",
            a.backend(),
            b.backend(),
            algorithm=algorithm,
            hash_key="header:X-User",
        )
    )
    seen = Counter()
    with httpx.Client(timeout=5) as client:
        for i in range(60):
            # New connections for source_ip would not help on loopback: vary the hash key.
            seen[served_by(client, runner.port, **{"X-User": f"user{i}"})] += 1
    if algorithm == "source_ip":
        assert len(seen) == 1  # one client address, one backend
    else:
        assert set(seen) == {"a", "b"}


def test_weights_three_to_one_split_traffic_about_75_25(
    make_proxy: Callable[..., ProxyRunner], pair: tuple[Origin, Origin]
) -> None:
    a, b = pair
    for algorithm in ("weighted_round_robin", "consistent_hash"):
        runner = make_proxy()
        runner.route(
            proxy_for(
                "app.example.org",
                a.backend(weight=3),
                b.backend(weight=1),
                algorithm=algorithm,
                hash_key="header:X-User",
            )
        )
        seen: Counter[str] = Counter()
        with httpx.Client(timeout=5) as client:
            for i in range(400):
                seen[served_by(client, runner.port, **{"X-User": f"u{i}"})] += 1
        assert 0.65 <= seen["a"] / 400 <= 0.85, (algorithm, seen)


def test_balancer_state_survives_snapshot_swaps(
    make_proxy: Callable[..., ProxyRunner], pair: tuple[Origin, Origin]
) -> None:
    a, b = pair
    runner = make_proxy()
    seen: Counter[str] = Counter()
    with httpx.Client(timeout=5) as client:
        for _ in range(40):
            # A new snapshot (new Proxy object, same id and algorithm) before every request.
            runner.route(
                proxy_for(
                    "app.example.org",
                    a.backend(weight=3),
                    b.backend(weight=1),
                    algorithm="weighted_round_robin",
                )
            )
            seen[served_by(client, runner.port)] += 1
    assert seen == {"a": 30, "b": 10}


def test_weight_zero_backend_gets_no_new_requests(
    make_proxy: Callable[..., ProxyRunner], pair: tuple[Origin, Origin]
) -> None:
    a, b = pair
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", a.backend(), b.backend(weight=0)))
    with httpx.Client(timeout=5) as client:
        assert {served_by(client, runner.port) for _ in range(10)} == {"a"}


def test_backup_serves_only_when_no_primary_is_left(
    make_proxy: Callable[..., ProxyRunner], pair: tuple[Origin, Origin]
) -> None:
    a, b = pair
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", a.backend(), b.backend(backup=True)))
    with httpx.Client(timeout=5) as client:
        assert {served_by(client, runner.port) for _ in range(6)} == {"a"}
        runner.on_loop(lambda: runner.dp.set_health(frozenset({("app.example.org/", "a")})))
        assert {served_by(client, runner.port) for _ in range(6)} == {"b"}


def test_cookie_persistence_keeps_a_client_on_one_backend_until_it_goes(
    make_proxy: Callable[..., ProxyRunner], pair: tuple[Origin, Origin]
) -> None:
    a, b = pair
    runner = make_proxy()
    sticky = SessionPersistence(type="cookie")
    runner.route(proxy_for("app.example.org", a.backend(), b.backend(), session_persistence=sticky))
    with httpx.Client(timeout=5) as client:
        first = client.get(f"http://127.0.0.1:{runner.port}/", headers=HOST)
        assert "PORTWAY_SRV=" in first.headers["set-cookie"]
        assert "Secure" not in first.headers["set-cookie"]  # plain HTTP
        home = first.text.split(" ")[0]
        # httpx keeps the cookie: every later request lands on the same backend.
        assert {served_by(client, runner.port) for _ in range(20)} == {home}
        # Its backend goes down: the client moves, and then sticks to the new one.
        runner.on_loop(lambda: runner.dp.set_health(frozenset({("app.example.org/", home)})))
        moved = {served_by(client, runner.port) for _ in range(10)}
        assert len(moved) == 1 and moved != {home}
        runner.on_loop(lambda: runner.dp.set_health(frozenset()))
        assert {served_by(client, runner.port) for _ in range(10)} == moved
        # The backend is removed from the proxy: it moves back to the one left.
        left = a if moved == {"b"} else b
        runner.route(proxy_for("app.example.org", left.backend(), session_persistence=sticky))
        assert {served_by(client, runner.port) for _ in range(5)} == {left.name}


def test_source_ip_persistence_keeps_a_client_on_one_backend(
    make_proxy: Callable[..., ProxyRunner], pair: tuple[Origin, Origin]
) -> None:
    a, b = pair
    runner = make_proxy()
    runner.route(
        proxy_for(
            "app.example.org",
            a.backend(),
            b.backend(),
            session_persistence=SessionPersistence(type="source_ip"),
        )
    )
    picked = set()
    for _ in range(10):
        with httpx.Client(timeout=5) as client:  # a new connection each time
            picked.add(served_by(client, runner.port))
            assert (
                "set-cookie"
                not in client.get(f"http://127.0.0.1:{runner.port}/", headers=HOST).headers
            )
    assert len(picked) == 1


def test_consistent_hash_on_a_cookie_keeps_each_key_on_one_backend(
    make_proxy: Callable[..., ProxyRunner], pair: tuple[Origin, Origin]
) -> None:
    a, b = pair
    runner = make_proxy()
    runner.route(
        proxy_for(
            "app.example.org",
            a.backend(),
            b.backend(),
            algorithm="consistent_hash",
            hash_key="cookie:sid",
        )
    )
    with httpx.Client(timeout=5) as client:
        by_key = {
            key: {served_by(client, runner.port, Cookie=f"x=1; sid={key}") for _ in range(5)}
            for key in (f"s{i}" for i in range(20))
        }
    assert all(len(v) == 1 for v in by_key.values())
    assert {next(iter(v)) for v in by_key.values()} == {"a", "b"}
