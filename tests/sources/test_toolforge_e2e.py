"""Toolforge end to end: tools running as real Unix users register through the 8282
listener (identity from Debian's oidentd), the service stores their routes, the
reconciler publishes them, the data plane routes them, /list lists them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sources.conftest import run_client_as
from tests.sources.toolforge_node import CANONICAL, LEGACY, ToolforgeNode, ToolServer


@pytest.fixture
def servers() -> Iterator[dict[str, ToolServer]]:
    made = {name: ToolServer(name) for name in ("alpha", "beta", "ingress")}
    yield made
    for server in made.values():
        server.stop()


@pytest.fixture
def node(
    tmp_path: Path, identd_port: int, unix_users: tuple[str, ...], servers: dict[str, ToolServer]
) -> Iterator[ToolforgeNode]:
    running = ToolforgeNode(tmp_path, identd_port, default_backend=servers["ingress"].url)
    yield running
    running.stop()


def register(node: ToolforgeNode, user: str, payload: str) -> str:
    return run_client_as(user, node.registration_port, payload)


def test_a_tool_registers_is_routed_listed_and_unregisters(
    node: ToolforgeNode, servers: dict[str, ToolServer]
) -> None:
    alpha = servers["alpha"]
    assert register(node, "tools.alpha", f"registerCanonical\\n.*\\n{alpha.url}\\n") == "ok"
    host = f"alpha.{CANONICAL}"
    node.wait_for(lambda: node.get(host, "/x").text == "alpha /x")
    assert alpha.seen[-1]["X-Original-URI"] == "/x"
    legacy = node.get(LEGACY, "/alpha/page?q=1")
    assert legacy.status_code == 307
    assert legacy.headers["Location"] == "https://alpha.toolforge.org/page?q=1"
    assert node.listed() == {"alpha": {"status": "active"}}

    assert register(node, "tools.alpha", "unregister\\n.*\\n") == "ok"
    node.wait_for(lambda: node.listed() == {})
    node.wait_for(lambda: node.get(host, "/x").text == "ingress /x")  # the default backend


def test_a_non_canonical_tool_is_proxied_on_the_legacy_path(
    node: ToolforgeNode, servers: dict[str, ToolServer]
) -> None:
    beta = servers["beta"]
    assert register(node, "tools.beta", f"register\\n^/api\\n{beta.url}\\n") == "ok"
    node.wait_for(lambda: node.get(LEGACY, "/beta/api/v1?x=2").status_code == 200)
    assert beta.seen[-1]["path"] == "/beta/api/v1?x=2"  # the full original URI
    assert beta.seen[-1]["Host"] == LEGACY
    # Its pattern matches the path after /beta: anything else is the ingress's.
    assert node.get(LEGACY, "/beta/other").text == "ingress /beta/other"


def test_a_tool_cannot_unregister_or_overwrite_another_tools_routes(
    node: ToolforgeNode, servers: dict[str, ToolServer]
) -> None:
    alpha, beta = servers["alpha"], servers["beta"]
    assert register(node, "tools.alpha", f"register\\n.*\\n{alpha.url}\\n") == "ok"
    node.wait_for(lambda: node.get(f"alpha.{CANONICAL}").text == "alpha /")
    # beta's identity names beta's tool: its unregister and register never reach alpha.
    assert register(node, "tools.beta", "unregister\\n.*\\n") == "ok"
    assert register(node, "tools.beta", f"register\\n.*\\n{beta.url}\\n") == "ok"
    node.wait_for(lambda: node.get(f"beta.{CANONICAL}").text == "beta /")
    assert node.get(f"alpha.{CANONICAL}").text == "alpha /"
    assert node.listed() == {"alpha": {"status": "active"}, "beta": {"status": "active"}}


def test_refusals_change_nothing(node: ToolforgeNode, servers: dict[str, ToolServer]) -> None:
    revision = node.store.current_revision()
    reply = register(node, "notatool", f"register\\n.*\\n{servers['alpha'].url}\\n")
    assert reply.startswith("fail: ") and "not a tool account" in reply
    assert register(node, "tools.alpha", "register\\n.*\\nhttp://169.254.169.254:80\\n") == "fail"
    assert register(node, "tools.alpha", f"register\\n(a*\\n{servers['alpha'].url}\\n") == "fail"
    assert node.store.current_revision() == revision
    assert node.listed() == {}


def test_list_answers_404_page_not_found_for_anything_else(node: ToolforgeNode) -> None:
    for path in ("/", "/list/x", "/lists"):
        response = httpx.get(f"http://127.0.0.1:{node.list_port}{path}", timeout=5)
        assert response.status_code == 404
        assert response.text == "Page not found\n"
    response = httpx.post(f"http://127.0.0.1:{node.list_port}/list", timeout=5)
    assert response.status_code == 404
    listed = httpx.get(f"http://127.0.0.1:{node.list_port}/list", timeout=5)
    assert listed.headers["Content-Type"] == "application/json"
