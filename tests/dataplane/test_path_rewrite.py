"""A proxy's ``rewrite.backend_prefix`` on the wire: the backend gets the target with the
proxy's prefix replaced (OpenShift's endpoint mappings, compat.md §3)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import httpx
import pytest

from portway.model import Rewrite
from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for, raw, status_of


def get(port: int, host: str, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}, timeout=5)


@pytest.mark.parametrize(
    ("prefix", "backend", "sent", "seen"),
    [
        ("/health", "/configuration/health", "/health", "/configuration/health"),
        (
            "/health",
            "/configuration/health",
            "/health/x/y?a=%2F",
            "/configuration/health/x/y?a=%2F",
        ),
        ("/health", "/configuration/health", "/health?a=1", "/configuration/health?a=1"),
        ("/health", "/configuration/health", "/health/", "/configuration/health/"),
        ("/health", "/", "/health/x", "/x"),
        ("/health", "/", "/health", "/"),
        ("/health", "/", "/health?q", "/?q"),
        ("/", "/app", "/x?q", "/app/x?q"),
        ("/", "/app", "/", "/app/"),
    ],
)
def test_the_backend_gets_the_target_with_the_prefix_replaced(
    make_proxy: Callable[..., ProxyRunner],
    origin: Origin,
    prefix: str,
    backend: str,
    sent: str,
    seen: str,
) -> None:
    runner = make_proxy()
    base = proxy_for("app.example.org", origin.backend(), prefix=prefix)
    runner.route(dataclasses.replace(base, rewrite=Rewrite(backend_prefix=backend)))
    response = get(runner.port, "app.example.org", sent)
    assert response.status_code == 200
    assert origin.seen[-1].path == seen


def test_other_prefixes_and_keep_alive_requests_are_not_rewritten_twice(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    root, health = make_origin("root"), make_origin("health")
    runner = make_proxy()
    rewritten = proxy_for("app.example.org", health.backend(), prefix="/health")
    runner.route(
        proxy_for("app.example.org", root.backend()),
        dataclasses.replace(rewritten, rewrite=Rewrite(backend_prefix="/configuration/health")),
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{runner.port}", timeout=5) as client:
        for _ in range(3):  # the same target again on one connection: the cached route
            assert client.get("/health/a", headers={"Host": "app.example.org"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "app.example.org"}).status_code == 200
    assert [s.path for s in health.seen] == ["/configuration/health/a"] * 3
    assert [s.path for s in root.seen] == ["/healthz"]


def test_an_absolute_form_target_is_rewritten_as_its_path(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    base = proxy_for("app.example.org", origin.backend(), prefix="/health")
    runner.route(dataclasses.replace(base, rewrite=Rewrite(backend_prefix="/cfg")))
    request = b"GET http://app.example.org/health/z HTTP/1.1\r\nHost: app.example.org\r\n"
    response, _ = raw(runner.port, request + b"Connection: close\r\n\r\n")
    assert status_of(response) == 200
    assert origin.seen[-1].path == "/cfg/z"
