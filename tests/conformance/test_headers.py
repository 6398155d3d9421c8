"""What the backend is told about the client, on every data plane: the forwarded
headers are Portway's, a client's spoofed ones are dropped, and hop-by-hop headers
never pass."""

from __future__ import annotations

import pytest

from portway.model import Privacy
from tests.conformance.client import get
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for

SPOOFED = {
    "X-Forwarded-For": "6.6.6.6",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "1",
    "Forwarded": "for=6.6.6.6",
}


@pytest.mark.feature("forwarded")
@pytest.mark.parametrize(
    ("host", "sent", "forwarded_host"),
    [
        ("app.example.org", {}, "app.example.org"),
        ("app.example.org:8080", SPOOFED, '"app.example.org:8080"'),  # RFC 7239 §6: quoted
    ],
    ids=["set", "a-clients-replaced"],
)
def test_forwarded_headers_are_portways_own(
    plane: Plane, origin: Origin, host: str, sent: dict[str, str], forwarded_host: str
) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    get(plane.port, host, "/h", sent)
    seen = origin.seen[-1]
    assert seen.header("Host") == host
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("X-Forwarded-Host") == host
    assert seen.header("X-Forwarded-Port") == str(plane.port)
    assert seen.header("Forwarded") == f"for=127.0.0.1;proto=http;host={forwarded_host}"


@pytest.mark.feature("x_real_ip")
def test_a_clients_x_real_ip_is_dropped(plane: Plane, origin: Origin) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    get(plane.port, "app.example.org", "/", {"X-Real-IP": "6.6.6.6"})
    assert origin.seen[-1].header("X-Real-IP") is None


@pytest.mark.feature("hop_by_hop")
def test_proxy_and_hop_by_hop_headers_are_dropped(plane: Plane, origin: Origin) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    dropped = {
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Trailer": "X-T",
        "Proxy-Connection": "keep-alive",
        "Proxy": "http://evil.example:3128",
    }
    get(plane.port, "app.example.org", "/", {**dropped, "X-Public": "ok"})
    seen = origin.seen[-1]
    assert {name: seen.header(name) for name in dropped} == dict.fromkeys(dropped)
    assert seen.header("X-Public") == "ok"


@pytest.mark.feature("underscores")
def test_underscore_spellings_of_forwarded_headers_are_dropped(
    plane: Plane, origin: Origin
) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    get(plane.port, "app.example.org", "/", {"X_Forwarded_For": "7.7.7.7"})
    assert origin.seen[-1].header("X_Forwarded_For") is None


@pytest.mark.feature("connection_named")
def test_headers_the_client_names_in_connection_are_dropped_but_not_ours(
    plane: Plane, origin: Origin
) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    get(
        plane.port,
        "app.example.org",
        "/",
        {"Connection": "keep-alive, X-Private, X-Forwarded-For", "X-Private": "secret"},
    )
    seen = origin.seen[-1]
    assert seen.header("X-Private") is None
    assert seen.header("X-Forwarded-For") == "127.0.0.1"


@pytest.mark.feature("privacy")
def test_privacy_off_sends_no_client_address_and_none_of_the_clients(
    plane: Plane, origin: Origin
) -> None:
    plane.route(
        proxy_for("off.example.org", origin.backend(), privacy=Privacy(forwarded_for="off")),
        proxy_for("on.example.org", origin.backend()),
    )
    get(plane.port, "off.example.org", "/", {**SPOOFED, "X-Real-IP": "6.6.6.6"})
    seen = origin.seen[-1]
    assert [seen.header(n) for n in ("X-Forwarded-For", "Forwarded", "X-Real-IP")] == [None] * 3
    assert (seen.header("X-Forwarded-Proto"), seen.header("X-Forwarded-Host")) == (
        "http",
        "off.example.org",
    )
    get(plane.port, "on.example.org", "/", SPOOFED)
    assert origin.seen[-1].header("X-Forwarded-For") == "127.0.0.1"


@pytest.mark.feature("forwarded")
def test_a_trusted_peers_forwarded_headers_are_appended_to(
    trusting_plane: Plane, origin: Origin
) -> None:
    trusting_plane.route(proxy_for("app.example.org", origin.backend()))
    theirs = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "Forwarded": "for=203.0.113.9",
    }
    get(trusting_plane.port, "app.example.org", "/", theirs)
    seen = origin.seen[-1]
    assert seen.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "https"
    assert seen.header("Forwarded") == (
        "for=203.0.113.9, for=127.0.0.1;proto=http;host=app.example.org"
    )
