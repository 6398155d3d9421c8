"""Proxies on ports of their own (issue 13): what a tenant may claim, and what it may not."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api.conftest import Api, assert_error

from portway.model.listen_policy import ListenPolicy, PortRange

API_PORT = 5668  # what the policy below reserves, as ServeConfig.listen_policy does


@pytest.fixture(autouse=True)
def _ports(api: Api) -> None:
    ranges = (PortRange("127.0.0.1", 8000, 8999), PortRange("127.0.0.1", 5668, 5668))
    api.service.listen_policy = ListenPolicy(ranges, frozenset({API_PORT, 8080}))


def _create(api: Api, proxy: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return api.client.post(
        "/v1/alpha/proxies", json={"proxy": proxy}, headers=headers or api.member
    )


def _beta(api: Api, proxy: dict[str, Any]) -> Any:
    return api.client.post("/v1/beta/proxies", json={"proxy": proxy}, headers=api.other)


def test_claiming_the_api_port_is_forbidden_even_inside_an_allowed_range(api: Api) -> None:
    response = _create(api, {"hostname": "a.alpha.example.org", "listen_port": API_PORT})
    error = assert_error(response, 403, "listen_port")
    assert "Portway's own" in str(error["message"])


def test_claiming_a_shared_listener_port_is_forbidden(api: Api) -> None:
    response = _create(api, {"hostname": "a.alpha.example.org", "listen_port": 8080})
    assert_error(response, 403, "listen_port")


def test_a_port_outside_the_allow_list_is_forbidden(api: Api) -> None:
    response = _create(api, {"hostname": "a.alpha.example.org", "listen_port": 9000})
    error = assert_error(response, 403, "listen_port")
    assert "127.0.0.1:8000-8999" in str(error["message"])


def test_no_allow_list_means_no_port_at_all(api: Api) -> None:
    api.service.listen_policy = ListenPolicy()
    response = _create(api, {"hostname": "a.alpha.example.org", "listen_port": 8772})
    assert_error(response, 403, "listen_port")


def test_moving_a_proxy_onto_a_forbidden_port_is_refused(api: Api) -> None:
    made = _create(api, {"hostname": "a.alpha.example.org"}).json()["proxy"]
    response = api.client.patch(
        f"/v1/alpha/proxies/{made['id']}",
        json={"proxy": {"listen_port": API_PORT}},
        headers=api.member,
    )
    assert_error(response, 403, "listen_port")


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_an_impossible_port_is_422(api: Api, port: int) -> None:
    response = _create(api, {"hostname": "a.alpha.example.org", "listen_port": port})
    assert_error(response, 422, "listen_port")


def test_a_port_as_a_string_is_400(api: Api) -> None:
    response = _create(api, {"hostname": "a.alpha.example.org", "listen_port": "8772"})
    assert_error(response, 400, "listen_port")


def test_another_projects_hostname_on_a_port_is_refused(api: Api) -> None:
    assert (
        _create(api, {"hostname": "api.alpha.example.org", "listen_port": 8772}).status_code == 201
    )
    response = _beta(api, {"hostname": "api.alpha.example.org", "listen_port": 8772})
    assert response.status_code in (403, 404, 409), response.text
    response = _beta(api, {"hostname": "api.alpha.example.org", "listen_port": 8773})
    assert response.status_code in (403, 404, 409), response.text


def test_a_tcp_port_belongs_to_one_proxy_and_the_conflict_hides_other_projects(
    api: Api,
) -> None:
    tcp = {"hostname": "db.alpha.example.org", "listen_port": 8500, "protocol": "tcp"}
    made = _create(api, tcp).json()["proxy"]
    again = _create(api, {**tcp, "hostname": "db2.alpha.example.org"})
    error = assert_error(again, 409, "listen_port")
    assert made["id"] in str(error["message"])  # the caller may see its own proxy
    theirs = _beta(api, {**tcp, "hostname": "db.beta.example.org"})
    error = assert_error(theirs, 409, "listen_port")
    assert made["id"] not in str(error["message"]) and "db.alpha" not in str(error["message"])


def test_one_port_speaks_one_protocol(api: Api) -> None:
    assert (
        _create(
            api, {"hostname": "a.alpha.example.org", "listen_port": 8772, "protocol": "https"}
        ).status_code
        == 201
    )
    response = _create(
        api, {"hostname": "b.alpha.example.org", "listen_port": 8772, "protocol": "http"}
    )
    assert_error(response, 409, "listen_port")


def test_http_ports_are_shared_by_hostname_across_projects(api: Api) -> None:
    assert _create(api, {"hostname": "a.alpha.example.org", "listen_port": 8773}).status_code == 201
    assert _beta(api, {"hostname": "a.beta.example.org", "listen_port": 8773}).status_code == 201


def test_one_hostname_on_the_shared_listeners_and_on_two_ports(api: Api) -> None:
    """Seed 001: the same API on 8773 (HTTP) and 8772 (HTTPS)."""
    host = "ec2.alpha.example.org"
    for extra in ({}, {"listen_port": 8773}, {"listen_port": 8772, "protocol": "https"}):
        response = _create(api, {"hostname": host, **extra})
        assert response.status_code == 201, response.text
    listed = api.client.get("/v1/alpha/proxies", params={"hostname": host}, headers=api.reader)
    shown = {(p["listen_port"], p["protocol"]) for p in listed.json()["proxies"]}
    assert shown == {(None, "http"), (8773, "http"), (8772, "https")}
    again = _create(api, {"hostname": host, "listen_port": 8773})
    assert_error(again, 409, "path_prefix")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"protocol": "tcp"}, "protocol"),
        ({"protocol": "gopher", "listen_port": 8001}, "protocol"),
        ({"protocol": "tcp", "listen_port": 8001, "path_prefix": "/x"}, "path_prefix"),
        ({"protocol": "tcp", "listen_port": 8001, "algorithm": "consistent_hash"}, "algorithm"),
        ({"protocol": "tls-passthrough", "listen_port": 8001, "tls": {"hsts": True}}, "tls"),
        ({"listen_port": 8001, "stream": {"proxy_protocol": True}}, "stream"),
        ({"listen_port": 8001, "tls": {"redirect_http": True}}, "tls.redirect_http"),
        (
            {"protocol": "tcp", "listen_port": 8001, "stream": {"max_connections": 0}},
            "stream.max_connections",
        ),
    ],
)
def test_what_a_protocol_cannot_carry_is_422(api: Api, body: dict[str, Any], field: str) -> None:
    response = _create(api, {"hostname": "a.alpha.example.org", **body})
    assert_error(response, 422, field)


def test_a_tcp_proxy_round_trips(api: Api) -> None:
    body = {
        "hostname": "db.alpha.example.org",
        "listen_port": 8500,
        "protocol": "tcp",
        "algorithm": "least_conn",
        "stream": {"proxy_protocol": True, "max_connections": 100},
        "backends": [{"address": "10.0.0.5", "port": 5432}],
    }
    made = _create(api, body).json()["proxy"]
    assert (made["listen_port"], made["protocol"], made["stream"]) == (
        8500,
        "tcp",
        {"proxy_protocol": True, "max_connections": 100},
    )
    assert made["status"] == "active"
    moved = api.client.patch(
        f"/v1/alpha/proxies/{made['id']}", json={"proxy": {"listen_port": 8501}}, headers=api.member
    )
    assert moved.json()["proxy"]["listen_port"] == 8501


def test_a_port_proxy_is_no_dynamicproxy_mapping(api: Api) -> None:
    """The original API had no ports: its mappings are the shared listeners' root proxies."""
    host = "wiki.alpha.example.org"
    assert _create(api, {"hostname": host, "listen_port": 8773}).status_code == 201
    base = "/dynamicproxy-api/v1/alpha/mapping"
    assert api.client.get(base, headers=api.member).json() == {"routes": []}
    assert api.client.get(f"{base}/{host}", headers=api.member).status_code == 404
