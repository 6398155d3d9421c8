"""Toolforge through ``portway serve`` (issue 9): the 8282 listener, tool routing on the
canonical and legacy domains, ``/list``, and the source's state in /healthz and /metrics.

The tool authenticates with the token line here (the identd path runs against a real
oidentd and real Unix users in tests/sources/test_toolforge_e2e.py)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.integration.harness import Backend, Portway, free_ports, start_backend
from tests.sources.registration_client import send

CANONICAL, LEGACY = "toolforge.test", "tools.test"


class ToolNode(Portway):
    def __init__(self, data_dir: Path) -> None:
        self.register_port, self.list_port = free_ports(2)
        super().__init__(
            data_dir,
            extra=[
                "--toolforge-listen", f"127.0.0.1:{self.register_port}",
                "--toolforge-canonical-domain", CANONICAL,
                "--toolforge-legacy-domain", LEGACY,
                "--toolforge-list", f"127.0.0.1:{self.list_port}",
            ],
        )  # fmt: skip

    def send(self, data: bytes) -> bytes:
        return send(self.register_port, data)

    def tls_get(self, host: str, path: str = "/") -> httpx.Response:
        # Tool hosts are HTTPS only (plain HTTP gets a 301); the default certificate.
        url = f"https://127.0.0.1:{self.https_port}{path}"
        return httpx.get(url, headers={"Host": host}, verify=False, timeout=10)

    def tool_list(self) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.list_port}/list", timeout=10)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ToolNode]:
    pw = ToolNode(tmp_path / "data")
    pw.start()
    yield pw
    pw.stop()


def _member_token(pw: Portway, tool: str) -> str:
    assert pw.api("POST", "/v1/projects", json={"project": {"name": tool}}).status_code == 201
    made = pw.api("POST", f"/v1/{tool}/tokens", json={"token": {"role": "member"}})
    assert made.status_code == 201, made.text
    secret: str = made.json()["token"]["secret"]
    return secret


def _until(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_tool_registers_is_routed_listed_and_unregisters(
    node: ToolNode, backends: list[Backend]
) -> None:
    health = httpx.get(f"{node.api_url}/healthz", timeout=5).json()
    assert health["sources"]["toolforge"] == "up", health
    secret = _member_token(node, "alpha")
    line = f"token {secret}\n".encode()
    destination = f"http://127.0.0.1:{backends[0].port}"
    reply = node.send(line + f"registerCanonical\n.*\n{destination}\n".encode())
    assert reply == b"ok"

    _until(lambda: node.tls_get(f"alpha.{CANONICAL}").status_code == 200)
    seen = node.tls_get(f"alpha.{CANONICAL}", "/x?q=1").json()
    assert seen["backend"] == "b0" and seen["path"] == "/x?q=1"
    assert seen["headers"]["x-original-uri"] == "/x?q=1"
    moved = node.tls_get(LEGACY, "/alpha/x?q=1")
    assert moved.status_code == 307
    assert moved.headers["location"] == f"https://alpha.{CANONICAL}/x?q=1"
    listed = node.tool_list()
    assert listed.status_code == 200 and listed.json() == {"alpha": {"status": "active"}}
    assert httpx.get(f"http://127.0.0.1:{node.list_port}/other").text == "Page not found\n"
    metrics = httpx.get(f"{node.metrics_url}/metrics", timeout=5).text
    assert 'portway_source_up{source="toolforge"} 1' in metrics

    assert node.send(line + b"unregister\n.*\n") == b"ok"
    _until(lambda: node.tool_list().json() == {})
    _until(lambda: node.tls_get(f"alpha.{CANONICAL}").status_code == 404)


def test_a_token_of_one_tool_cannot_register_for_another(
    node: ToolNode, backends: list[Backend]
) -> None:
    _member_token(node, "alpha")
    beta = _member_token(node, "beta")
    # The tool is named by the token's project: beta's token registers beta, never alpha.
    reply = node.send(f"token {beta}\nregister\n.*\nhttp://127.0.0.1:{backends[1].port}\n".encode())
    assert reply == b"ok"
    _until(lambda: node.tool_list().json() == {"beta": {"status": "active"}})
    assert node.tls_get(f"alpha.{CANONICAL}").status_code == 404
    assert node.send(b"token not-a-token\nregister\n.*\nhttp://127.0.0.1:1\n").startswith(b"fail")


def test_a_tool_registering_an_https_destination_is_served_over_tls(node: ToolNode) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    secure = start_backend("secure", tls=context)  # speaks nothing but TLS
    try:
        secret = _member_token(node, "alpha")
        destination = f"https://127.0.0.1:{secure.port}"
        reply = node.send(f"token {secret}\nregister\n.*\n{destination}\n".encode())
        assert reply == b"ok"
        _until(lambda: node.tls_get(f"alpha.{CANONICAL}").status_code == 200)
        seen = node.tls_get(f"alpha.{CANONICAL}", "/over-tls").json()
        assert seen["backend"] == "secure" and seen["path"] == "/over-tls"
    finally:
        secure.stop()
