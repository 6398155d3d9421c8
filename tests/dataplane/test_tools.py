"""Toolforge tool routing over real sockets: canonical hosts by pattern, the legacy
domain (307 or proxied with the full URI), the default backend, X-Original-URI."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import httpx
import pytest

from portway.dataplane import DataPlaneSettings
from portway.model import Backend, Proxy, ToolSettings
from portway.router.tools import ToolDomains
from tests.dataplane.conftest import FAST, Origin, ProxyRunner, raw, status_of

CANONICAL = "toolforge.org"
LEGACY = "tools.wmflabs.org"


def tool(name: str, *routes: tuple[str, Origin], canonical: bool = False) -> Proxy:
    backends = tuple(
        Backend(id=f"{name}-{i}", address="127.0.0.1", port=origin.port, pattern=pattern)
        for i, (pattern, origin) in enumerate(routes)
    )
    return Proxy(
        id=name,
        project=name,
        hostname=f"{name}.{CANONICAL}",
        toolforge=ToolSettings(canonical=canonical),
        backends=backends,
    )


def settings(default: Origin | None = None, *, https: bool = False) -> DataPlaneSettings:
    url = None if default is None else f"http://127.0.0.1:{default.port}"
    domains = ToolDomains.build(CANONICAL, legacy=LEGACY, default_backend=url, https=https)
    return dataclasses.replace(FAST, toolforge=domains)


def get(port: int, host: str, path: str = "/", **kw: object) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}{path}",
        headers={"Host": host},
        timeout=5,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def origins(make_origin: Callable[[str], Origin]) -> dict[str, Origin]:
    return {name: make_origin(name) for name in ("root", "api", "apiv2", "other", "default")}


def test_canonical_host_routes_by_pattern_longest_first(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    runner = make_proxy(settings())
    o = origins
    # Stored order is not the order tried: the longest pattern first, then by text.
    runner.route(tool("alpha", (".*", o["root"]), ("/api.*", o["api"]), ("/api/v2.*", o["apiv2"])))
    host = f"alpha.{CANONICAL}"
    assert get(runner.port, host, "/api/v2/x").text.startswith("apiv2 /api/v2/x")
    assert get(runner.port, host, "/api/x").text.startswith("api /api/x")
    assert get(runner.port, host, "/page?q=1").text.startswith("root /page?q=1")


def test_ties_in_length_go_to_the_smaller_text_whatever_the_stored_order(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    runner = make_proxy(settings())
    o = origins
    for stored in (
        (("/b.*", o["other"]), ("/a.*", o["api"])),
        (("/a.*", o["api"]), ("/b.*", o["other"])),
    ):
        runner.route(tool("alpha", *stored))
        # Both patterns are searched (unanchored): "/a/b" contains "/a" and "/b".
        assert get(runner.port, f"alpha.{CANONICAL}", "/a/b").text.startswith("api ")


def test_no_matching_pattern_gets_the_404_page_without_a_default(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    runner = make_proxy(settings())
    runner.route(tool("alpha", ("^/only", origins["root"])))
    assert get(runner.port, f"alpha.{CANONICAL}", "/else").status_code == 404
    assert get(runner.port, f"nobody.{CANONICAL}", "/").status_code == 404
    assert get(runner.port, LEGACY, "/nobody/").status_code == 404
    assert origins["root"].seen == []


def test_what_no_tool_answers_goes_to_the_default_backend(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    o = origins
    runner = make_proxy(settings(o["default"]))
    runner.route(tool("alpha", ("^/only", o["root"])))
    assert get(runner.port, f"alpha.{CANONICAL}", "/else").text.startswith("default /else")
    assert get(runner.port, f"nobody.{CANONICAL}", "/x").text.startswith("default /x")
    assert get(runner.port, LEGACY, "/nobody/y").text.startswith("default /nobody/y")
    assert get(runner.port, LEGACY, "/").text.startswith("default /")
    seen = o["default"].seen[-1]
    assert seen.header("X-Original-URI") == "/"
    # Hosts outside the Toolforge names keep the ordinary 404.
    assert get(runner.port, "example.org", "/").status_code == 404


def test_legacy_path_of_a_canonical_tool_redirects_307_without_port(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    runner = make_proxy(settings())
    runner.route(tool("alpha", (".*", origins["root"]), canonical=True))
    for path, location in (
        ("/alpha/x/y?q=1&r=%2F", "https://alpha.toolforge.org/x/y?q=1&r=%2F"),
        ("/alpha", "https://alpha.toolforge.org/"),
        ("/alpha?q", "https://alpha.toolforge.org/?q"),
        ("/alpha/", "https://alpha.toolforge.org/"),
    ):
        response = get(runner.port, f"{LEGACY}:8080", path)
        assert response.status_code == 307, path
        assert response.headers["Location"] == location
    assert origins["root"].seen == []


def test_legacy_path_of_another_tool_is_proxied_with_the_full_uri(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    o = origins
    runner = make_proxy(settings())
    # The patterns match the path after /<tool>: "^/api" matches /alpha/api/x.
    runner.route(tool("alpha", (".*", o["root"]), ("^/api", o["api"])))
    response = get(runner.port, LEGACY, "/alpha/api/x?q=1")
    assert response.text.startswith("api /alpha/api/x?q=1")
    assert get(runner.port, LEGACY, "/alpha/other").text.startswith("root /alpha/other")
    seen = o["root"].seen[-1]
    assert seen.header("Host") == LEGACY
    assert seen.header("X-Original-URI") == "/alpha/other"


def test_backends_get_forwarded_headers_and_no_client_original_uri(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    o = origins
    runner = make_proxy(settings())
    runner.route(tool("alpha", (".*", o["root"])))
    request = (
        b"GET /p?x=1 HTTP/1.1\r\nHost: alpha.toolforge.org\r\n"
        b"X-Original-URI: /forged\r\nX_Original_URI: /forged2\r\nConnection: close\r\n\r\n"
    )
    response, _ = raw(runner.port, request)
    assert status_of(response) == 200
    seen = o["root"].seen[-1]
    assert seen.header("X-Original-URI") == "/p?x=1"
    assert seen.header("X-Forwarded-Host") == "alpha.toolforge.org"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("X-Forwarded-Port") == str(runner.port)


def test_ordinary_proxies_get_no_original_uri(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    o = origins
    runner = make_proxy(settings())
    runner.route(
        tool("alpha", (".*", o["root"])),
        Proxy(
            id="plain", project="p", hostname="app.example.org", backends=(o["other"].backend(),)
        ),
    )
    request = b"GET / HTTP/1.1\r\nHost: app.example.org\r\nX-Original-URI: /c\r\n\r\n"
    response, _ = raw(runner.port, request, timeout=1)
    assert status_of(response) == 200
    assert o["other"].seen[-1].header("X-Original-URI") is None


def test_plain_http_to_the_legacy_domain_and_default_is_redirected_to_https(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    runner = make_proxy(settings(origins["default"], https=True))
    runner.route(tool("alpha", (".*", origins["root"]), canonical=True))
    for host, path in ((LEGACY, "/alpha/x"), (f"nobody.{CANONICAL}", "/y")):
        response = httpx.post(
            f"http://127.0.0.1:{runner.port}{path}", headers={"Host": host}, timeout=5
        )
        assert response.status_code == 301
        assert response.headers["Location"].startswith(f"https://{host}")
    assert origins["default"].seen == []


def test_a_swap_that_removes_a_tool_sends_its_host_to_the_default(
    make_proxy: Callable[..., ProxyRunner], origins: dict[str, Origin]
) -> None:
    o = origins
    runner = make_proxy(settings(o["default"]))
    runner.route(tool("alpha", (".*", o["root"])))
    assert get(runner.port, f"alpha.{CANONICAL}", "/").text.startswith("root ")
    runner.route(tool("alpha"))  # its last route unregistered: the proxy stays, empty
    assert get(runner.port, f"alpha.{CANONICAL}", "/").text.startswith("default ")
