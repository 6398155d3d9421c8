"""Routing by Host and path, the same on every data plane: exact host, one-level
wildcard, longest path prefix on segment boundaries, one project per hostname, and
Portway's 404 page for a host no proxy serves."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from tests.conformance.client import get, page_body, raw, status_of
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for

CLOSE = b"Connection: close\r\n\r\n"


@pytest.mark.feature("routing")
def test_exact_host_then_one_level_wildcard(
    plane: Plane, make_origin: Callable[[str], Origin]
) -> None:
    exact, wild = make_origin("exact"), make_origin("wild")
    plane.route(
        proxy_for("a.example.org", exact.backend()), proxy_for("*.example.org", wild.backend())
    )
    assert get(plane.port, "a.example.org", "/x?y=%2F")[1] == b"exact /x?y=%2F 0"
    assert get(plane.port, "b.example.org", "/x")[1] == b"wild /x 0"
    status, body, _ = get(plane.port, "c.b.example.org")  # one label only
    assert (status, body) == (404, page_body(404))


@pytest.mark.feature("routing")
@pytest.mark.parametrize("host", ["APP.Example.ORG", "app.example.org:8080", "App.example.org."])
def test_host_is_case_insensitive_and_ignores_port_and_final_dot(
    plane: Plane, origin: Origin, host: str
) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    assert get(plane.port, host, "/h")[1] == b"one /h 0"
    assert origin.seen[-1].header("Host") == host  # preserved as the client sent it


@pytest.mark.feature("routing")
def test_longest_path_prefix_wins_on_segment_boundaries(
    plane: Plane, make_origin: Callable[[str], Origin]
) -> None:
    root, tool, deep = make_origin("root"), make_origin("tool"), make_origin("deep")
    plane.route(
        proxy_for("t.example.org", root.backend()),
        proxy_for("t.example.org", tool.backend(), prefix="/tool"),
        proxy_for("t.example.org", deep.backend(), prefix="/tool/deep"),
    )
    port = plane.port
    assert get(port, "t.example.org", "/tool")[1] == b"tool /tool 0"
    assert get(port, "t.example.org", "/tool/x?q=1")[1] == b"tool /tool/x?q=1 0"
    assert get(port, "t.example.org", "/tool/deep/y")[1] == b"deep /tool/deep/y 0"
    assert get(port, "t.example.org", "/tool?q=1")[1] == b"tool /tool?q=1 0"
    assert get(port, "t.example.org", "/toolbox")[1] == b"root /toolbox 0"


@pytest.mark.feature("error_pages")
def test_unknown_host_gets_portways_404_page(plane: Plane, origin: Origin) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    status, body, response = get(plane.port, "nobody.example.com")
    assert (status, body) == (404, page_body(404))
    assert (response.getheader("Content-Type") or "").startswith("text/html")
    assert response.getheader("Cache-Control") == "no-store"
    assert origin.seen == []


@pytest.mark.feature("ownership")
def test_exact_host_of_another_project_never_falls_back_to_its_wildcard(
    plane: Plane, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    wild = proxy_for("*.example.org", a.backend())
    mine = proxy_for("app.example.org", b.backend(), prefix="/two")
    plane.route(wild, dataclasses.replace(mine, project="q"))
    assert get(plane.port, "app.example.org", "/two")[1] == b"b /two 0"
    assert get(plane.port, "app.example.org", "/other")[:2] == (404, page_body(404))
    plane.route(wild, mine)  # same project: the wildcard answers what the host leaves out
    assert get(plane.port, "app.example.org", "/other")[1] == b"a /other 0"


@pytest.mark.feature("absolute_form")
def test_absolute_form_target_is_routed_by_its_authority_in_origin_form(
    plane: Plane, make_origin: Callable[[str], Origin]
) -> None:
    """RFC 9112 §3.2.2: the target's authority replaces Host; the backend gets
    origin-form and the Host it was routed for, never another site's name."""
    a, b = make_origin("a"), make_origin("b")
    plane.route(
        dataclasses.replace(proxy_for("a.example.org", a.backend()), project="alpha"),
        dataclasses.replace(proxy_for("b.example.org", b.backend()), project="beta"),
    )
    request = b"GET http://b.example.org/x?q=1 HTTP/1.1\r\nHost: a.example.org\r\n" + CLOSE
    response, _ = raw(plane.port, request)
    assert status_of(response) == 200 and response.endswith(b"b /x?q=1 0")
    assert (b.seen[-1].path, b.seen[-1].header("Host")) == ("/x?q=1", "b.example.org")
    assert a.seen == []


@pytest.mark.feature("routing")
def test_absolute_form_target_matching_host_is_forwarded_in_origin_form(
    plane: Plane, origin: Origin
) -> None:
    plane.route(proxy_for("app.example.org", origin.backend()))
    request = b"GET http://app.example.org/x HTTP/1.1\r\nHost: app.example.org\r\n" + CLOSE
    response, _ = raw(plane.port, request)
    assert status_of(response) == 200 and response.endswith(b"one /x 0")
    assert (origin.seen[-1].path, origin.seen[-1].header("Host")) == ("/x", "app.example.org")
