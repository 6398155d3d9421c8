"""Tool routing decisions, pure: pattern order, the legacy path, the 307 location."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from portway.model import Backend, Proxy, ToolSettings
from portway.router import RouteTable, Snapshot
from portway.router.tools import ToolDomains, legacy_split, redirect_location, tool_paths
from portway.sources.tool_list import active_tools, answer, list_body

DOMAINS = ToolDomains.build("toolforge.org", legacy="tools.wmflabs.org")


def tool(name: str, *patterns: str) -> Proxy:
    backends = tuple(
        Backend(id=f"b{i}", address="10.0.0.1", port=8000 + i, pattern=p)
        for i, p in enumerate(patterns)
    )
    return Proxy(
        id=name,
        project=name,
        hostname=f"{name}.toolforge.org",
        toolforge=ToolSettings(),
        backends=backends,
    )


@given(st.permutations([".*", "/a.*", "/b.*", "^/a/b", "/a/b/c"]))
def test_the_order_tried_does_not_depend_on_the_stored_order(patterns: list[str]) -> None:
    paths = tool_paths(tool("t", *patterns))
    assert paths is not None
    assert [p.pattern.text for p in paths.paths] == ["/a/b/c", "^/a/b", "/a.*", "/b.*", ".*"]


def test_an_ordinary_proxy_has_no_tool_paths_even_with_patterns() -> None:
    plain = Proxy(id="p", project="p", hostname="x.org", backends=tool("t", ".*").backends)
    assert tool_paths(plain) is None


def test_each_pattern_gets_a_proxy_narrowed_to_its_backend() -> None:
    paths = tool_paths(tool("t", ".*", "/api"))
    assert paths is not None
    narrowed = paths.match("/api/x")
    assert narrowed is not None
    assert narrowed.id == "t/b1" and [b.port for b in narrowed.backends] == [8001]


def test_legacy_split() -> None:
    assert legacy_split("/alpha/x/y") == ("alpha", "/x/y")
    assert legacy_split("/alpha") == ("alpha", "")
    assert legacy_split("/") == ("", "/")
    # Not one lower-case label: no tool, so no other host can be named by a path.
    for path in ("/a.b/x", "/Alpha/x", "/-a/", "/%61/", "/" + "a" * 64 + "/"):
        assert legacy_split(path)[0] == ""


def test_redirect_location_keeps_the_query_and_has_no_port() -> None:
    assert redirect_location(DOMAINS, "a", b"/a/x?q=1") == b"https://a.toolforge.org/x?q=1"
    assert redirect_location(DOMAINS, "a", b"/a") == b"https://a.toolforge.org/"
    assert redirect_location(DOMAINS, "a", b"/a?q") == b"https://a.toolforge.org/?q"


def test_covers_only_the_toolforge_names() -> None:
    for host in ("toolforge.org", "x.toolforge.org", "tools.wmflabs.org"):
        assert DOMAINS.covers(host)
    for host in ("eviltoolforge.org", "toolforge.org.evil", "wmflabs.org"):
        assert not DOMAINS.covers(host)


def test_list_has_the_tools_with_a_route() -> None:
    table = RouteTable.build(
        [
            tool("beta", ".*"),
            tool("alpha", ".*", "/x"),
            tool("empty"),
            Proxy(id="o", project="o", hostname="other.toolforge.org"),
        ]
    )
    snapshot = Snapshot(version=1, routes=table)
    assert active_tools(snapshot, "toolforge.org") == ["alpha", "beta"]
    body = list_body(snapshot, "toolforge.org")
    assert body == b'{"alpha": {"status": "active"}, "beta": {"status": "active"}}'
    assert json.loads(body) == {"alpha": {"status": "active"}, "beta": {"status": "active"}}
    assert json.loads(list_body(Snapshot(version=2), "toolforge.org")) == {}


def test_list_answers_only_get_and_head_of_list() -> None:
    def ok(head_only: bool) -> bytes:
        return b"head" if head_only else b"full"

    assert answer(b"GET /list HTTP/1.1\r\n", ok) == b"full"
    assert answer(b"GET /list?x=1 HTTP/1.0\r\n", ok) == b"full"
    assert answer(b"HEAD /list HTTP/1.1\r\n", ok) == b"head"
    for line in (b"GET / HTTP/1.1", b"POST /list HTTP/1.1", b"GET /list/ HTTP/1.1"):
        assert answer(line, ok).endswith(b"\r\n\r\nPage not found\n")
    assert answer(b"garbage", ok).startswith(b"HTTP/1.1 400")


def test_an_https_default_backend_is_a_tls_backend() -> None:
    for url, tls in (("https://10.0.0.1:8443", True), ("http://10.0.0.1:8080", False)):
        default = ToolDomains.build("toolforge.org", default_backend=url, https=True).default
        assert default is not None and [b.tls for b in default.backends] == [tls]
