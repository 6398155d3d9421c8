"""A wildcard of one project never answers for a hostname another project routes.

Issue 7, defect 1: project B owns ``app.zone.test`` with the prefix ``/two``; project A
creates ``*.zone.test``; a request for ``app.zone.test/other`` reached A's backend. A
hostname belongs to one project with all its paths, so an unmatched path of B's host is
a 404, never a neighbour's wildcard, and the HTTPS certificate for it is never the
neighbour's either (nor may its requests ride on a connection that got the neighbour's
certificate). An absolute-form target is routed by its own host. Sharing a
hostname by path is an admin's explicit setting (a zone with ``shared_host``).

In order: the pure route table; the target/Host check on a real data plane; the API's
shared hosts; then the whole system (``portway serve``, its API and its data plane).
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from portway.model import Proxy
from portway.router import RouteTable
from tests.api.conftest import Api, assert_error
from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for, raw, status_of
from tests.integration.harness import Backend, Portway, start_backend


def proxy(pid: str, project: str, hostname: str, prefix: str = "/") -> Proxy:
    return Proxy(id=pid, project=project, hostname=hostname, path_prefix=prefix)


def matched(table: RouteTable, host: str, path: str) -> str | None:
    route = table.match(host, path)
    return None if route is None else route.proxy.id


def test_another_projects_wildcard_does_not_catch_unmatched_paths_of_a_host() -> None:
    table = RouteTable.build(
        [proxy("b-two", "beta", "app.zone.test", "/two"), proxy("a-wild", "alpha", "*.zone.test")]
    )
    assert matched(table, "app.zone.test", "/two/x") == "b-two"
    assert matched(table, "app.zone.test", "/other") is None
    assert matched(table, "app.zone.test", "/") is None
    # Names nobody routes exactly still belong to the wildcard.
    assert matched(table, "free.zone.test", "/other") == "a-wild"


def test_prefixed_wildcard_of_another_project_does_not_catch_them_either() -> None:
    table = RouteTable.build(
        [
            proxy("b-two", "beta", "app.zone.test", "/two"),
            proxy("a-api", "alpha", "*.zone.test", "/api"),
        ]
    )
    assert matched(table, "app.zone.test", "/api/keys") is None
    assert matched(table, "free.zone.test", "/api/keys") == "a-api"


def test_the_same_projects_wildcard_still_catches_what_its_exact_host_leaves_out() -> None:
    table = RouteTable.build(
        [
            proxy("a-only", "alpha", "only.zone.test", "/only"),
            proxy("a-wild", "alpha", "*.zone.test"),
        ]
    )
    assert matched(table, "only.zone.test", "/only/x") == "a-only"
    assert matched(table, "only.zone.test", "/other") == "a-wild"


def test_a_host_shared_by_several_projects_has_no_wildcard_fallback() -> None:
    table = RouteTable.build(
        [
            proxy("a-tool", "alpha", "tools.zone.test", "/a"),
            proxy("b-tool", "beta", "tools.zone.test", "/b"),
            proxy("a-wild", "alpha", "*.zone.test"),
        ]
    )
    assert matched(table, "tools.zone.test", "/a/x") == "a-tool"
    assert matched(table, "tools.zone.test", "/b") == "b-tool"
    assert matched(table, "tools.zone.test", "/c") is None


def test_incremental_changes_move_the_owner_with_the_proxies() -> None:
    table = RouteTable.build([proxy("a-wild", "alpha", "*.zone.test")])
    assert matched(table, "app.zone.test", "/other") == "a-wild"
    table = table.with_changes(upserts=[proxy("b-two", "beta", "app.zone.test", "/two")])
    assert matched(table, "app.zone.test", "/other") is None
    # B moves its proxy to another hostname: app.zone.test is free again.
    table = table.with_changes(upserts=[proxy("b-two", "beta", "elsewhere.test", "/two")])
    assert matched(table, "app.zone.test", "/other") == "a-wild"
    table = table.with_changes(upserts=[proxy("a-app", "alpha", "app.zone.test", "/app")])
    assert matched(table, "app.zone.test", "/other") == "a-wild"
    table = table.with_changes(upserts=[proxy("b-app", "beta", "app.zone.test", "/b")])
    assert matched(table, "app.zone.test", "/other") is None  # now shared: no fallback
    table = table.with_changes(removed=["b-app"])
    assert matched(table, "app.zone.test", "/other") == "a-wild"


projects = st.sampled_from(["alpha", "beta"])
hosts = st.sampled_from(["a.z.test", "b.z.test", "*.z.test"])
prefixes = st.sampled_from(["/", "/x", "/x/y", "/y"])
paths = st.sampled_from(["/", "/x", "/x/y/z", "/y", "/q"])


@given(
    st.lists(st.tuples(projects, hosts, prefixes), max_size=10, unique_by=lambda e: e[1:]),
    st.lists(st.integers(0, 9), max_size=4),
    st.sampled_from(["a.z.test", "b.z.test", "c.z.test"]),
    paths,
)
def test_a_match_never_crosses_to_a_project_that_does_not_route_the_host(
    entries: list[tuple[str, str, str]], removed: list[int], host: str, path: str
) -> None:
    proxies = [proxy(f"p{i}", pr, h, pf) for i, (pr, h, pf) in enumerate(entries)]
    gone = {f"p{i}" for i in removed}
    kept = [p for p in proxies if p.id not in gone]
    table = RouteTable.build(proxies).with_changes(removed=gone)
    route = table.match(host, path)
    owners = {p.project for p in kept if p.hostname == host}
    if route is not None and owners:
        assert route.proxy.project in owners
    if not owners:  # no exact entry: the wildcard answers as before
        wild = [p for p in kept if p.hostname == "*.z.test"]
        assert (route is None) == (not any(_covers(p.path_prefix, path) for p in wild))
    full = RouteTable.build(kept).match(host, path)
    assert (route and route.proxy.id) == (full and full.proxy.id)


def _covers(prefix: str, path: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


# -- the request target's host and the Host header ----------------------------------------


def test_an_absolute_target_is_routed_by_its_own_host_and_forwarded_with_it(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    # A backend follows the absolute-form target (RFC 9112 §3.2.2 tells origin servers
    # to). Were Portway to route on Host instead, beta's backend would serve a request
    # that claims to be for alpha's host, or the reverse. Portway routes on the target's
    # authority and forwards origin-form with that Host, so both read the same host.
    a, b = make_origin("alpha"), make_origin("beta")
    runner = make_proxy()
    runner.route(
        dataclasses.replace(proxy_for("*.zone.test", a.backend()), project="alpha"),
        dataclasses.replace(proxy_for("app.zone.test", b.backend()), project="beta"),
    )
    for target, host, origin, expected in (
        (b"http://free.zone.test/x", b"app.zone.test", a, "free.zone.test"),
        (b"http://app.zone.test/x", b"free.zone.test", b, "app.zone.test"),
        (b"http://App.Zone.Test./x", b"app.zone.test", b, "App.Zone.Test."),
    ):
        before = len(a.seen) + len(b.seen)
        data, _ = raw(runner.port, b"GET " + target + b" HTTP/1.1\r\nHost: " + host + _END)
        assert status_of(data) == 200, (target, data[:100])
        assert len(a.seen) + len(b.seen) == before + 1
        seen = origin.seen[-1]
        assert (seen.path, seen.header("Host")) == ("/x", expected)
    # userinfo could make a backend read another host (RFC 9110 §4.2.4): refused.
    data, closed = raw(
        runner.port, b"GET http://app.zone.test@free.zone.test/x HTTP/1.1\r\nHost: x" + _END
    )
    assert status_of(data) == 400 and closed
    assert len(a.seen) + len(b.seen) == 3


_END = b"\r\nConnection: close\r\n\r\n"


# -- the one explicit way to share a hostname: an admin's shared host -------------------


def _zone(api: Api, **zone: Any) -> Any:
    return api.client.post("/v1/zones", json={"zone": zone}, headers=api.admin)


def _claim(api: Api, headers: dict[str, str], hostname: str, prefix: str = "/") -> Any:
    body = {"proxy": {"hostname": hostname, "path_prefix": prefix}}
    project = "alpha" if headers is api.member else "beta"
    return api.client.post(f"/v1/{project}/proxies", json=body, headers=headers)


def test_a_second_project_cannot_route_a_hostname_by_accident(api: Api) -> None:
    assert _claim(api, api.member, "app.zone.test", "/one").status_code == 201
    assert_error(_claim(api, api.other, "app.zone.test", "/two"), 409, "hostname")


def test_an_admin_shared_host_is_split_by_path_between_projects(api: Api) -> None:
    r = _zone(api, name="Tools.Zone.Test", shared_host=True)
    assert r.status_code == 201, r.text
    assert r.json()["zone"] == {
        "name": "tools.zone.test",
        "project": None,
        "shared": False,
        "shared_host": True,
        "default": False,
        "deprecated": False,
    }
    assert _claim(api, api.member, "tools.zone.test", "/alpha").status_code == 201
    assert _claim(api, api.other, "tools.zone.test", "/beta").status_code == 201
    assert _claim(api, api.other, "tools.zone.test", "/alphabet").status_code == 201
    assert _claim(api, api.member, "tools.zone.test", "/alpha/more").status_code == 201
    # A prefix inside (or around) another project's would take its paths: refused.
    for prefix in ("/alpha/admin", "/", "/beta", "/alpha"):
        assert_error(_claim(api, api.other, "tools.zone.test", prefix), 409, "path_prefix")
    mine = api.client.get("/v1/alpha/proxies", headers=api.member).json()["proxies"]
    alpha = next(p for p in mine if p["path_prefix"] == "/alpha")
    move = {"proxy": {"path_prefix": "/beta/x"}}
    r = api.client.patch(f"/v1/alpha/proxies/{alpha['id']}", json=move, headers=api.member)
    assert_error(r, 409, "path_prefix")
    # Names below a shared host are not shared: the first project keeps them.
    assert _claim(api, api.member, "x.tools.zone.test").status_code == 201
    assert_error(_claim(api, api.other, "x.tools.zone.test", "/b"), 409, "hostname")


def test_a_shared_host_is_the_admins_and_nobody_elses(api: Api) -> None:
    zone = {"zone": {"name": "tools.zone.test", "shared_host": True}}
    assert_error(api.client.post("/v1/zones", json=zone, headers=api.member), 403)
    assert_error(_zone(api, name="tools.zone.test", shared_host=True, project="alpha"), 422)
    assert_error(_zone(api, name="tools.zone.test", shared_host=True, shared=True), 422)
    assert _zone(api, name="tools.zone.test", shared_host=True).status_code == 201
    listed = api.client.get("/v1/zones", headers=api.member).json()["zones"]
    assert [z["name"] for z in listed] == ["tools.zone.test"]


def test_a_shared_host_does_not_turn_on_zone_rules_for_other_names(api: Api) -> None:
    assert _zone(api, name="tools.zone.test", shared_host=True).status_code == 201
    assert _claim(api, api.member, "anything.else.test").status_code == 201


def test_a_shared_host_in_use_by_several_projects_cannot_be_deleted(api: Api) -> None:
    assert _zone(api, name="tools.zone.test", shared_host=True).status_code == 201
    assert _claim(api, api.member, "tools.zone.test", "/alpha").status_code == 201
    beta = _claim(api, api.other, "tools.zone.test", "/beta").json()["proxy"]
    r = api.client.delete("/v1/zones/tools.zone.test", headers=api.admin)
    assert_error(r, 409, "zone")
    r = api.client.delete(f"/v1/beta/proxies/{beta['id']}", headers=api.other)
    assert r.status_code == 204
    assert api.client.delete("/v1/zones/tools.zone.test", headers=api.admin).status_code == 204
    # No longer shared: the hostname is alpha's alone again.
    assert_error(_claim(api, api.other, "tools.zone.test", "/beta"), 409, "hostname")


# -- the whole system ------------------------------------------------------------------

DEFAULT_NAMES = {"*.portway.test", "portway.test"}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Portway, Backend, Backend]]:
    a, b = start_backend("alpha-backend"), start_backend("beta-backend")
    pw = Portway(tmp_path_factory.mktemp("wildcard") / "data")
    pw.start()
    for project in ("alpha", "beta"):
        r = pw.api("POST", "/v1/projects", json={"project": {"name": project}})
        assert r.status_code == 201, r.text
    yield pw, a, b
    pw.stop()
    a.stop()
    b.stop()


def _create(pw: Portway, project: str, hostname: str, port: int, **extra: Any) -> str:
    body = {"hostname": hostname, "backends": [{"address": "127.0.0.1", "port": port}], **extra}
    r = pw.api("POST", f"/v1/{project}/proxies", json={"proxy": body})
    assert r.status_code == 201, r.text
    return str(r.json()["proxy"]["id"])


def _eventually(check: Any, timeout: float = 10) -> Any:
    """Poll ``check`` until it returns something true (the snapshot is applied)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def _backend_of(response: httpx.Response) -> str | None:
    return str(response.json()["backend"]) if response.status_code == 200 else None


def test_wildcard_of_one_project_never_answers_for_another_projects_host(
    system: tuple[Portway, Backend, Backend],
) -> None:
    pw, a, b = system
    _create(pw, "beta", "app.zone.test", b.port, path_prefix="/two")
    _create(pw, "alpha", "*.zone.test", a.port)
    assert _eventually(lambda: _backend_of(pw.get("free.zone.test", "/x")) == "alpha-backend")
    assert _backend_of(pw.get("app.zone.test", "/two/x")) == "beta-backend"
    seen = len(a.seen)
    for path in ("/other", "/", "/twofold", "/x/two"):
        response = pw.get("app.zone.test", path)
        assert response.status_code == 404, (path, response.text)
        assert "no such proxy" in response.text.lower()
    assert len(a.seen) == seen  # nothing reached alpha's backend


def _served_names(pw: Portway, sni: str, ctx: ssl.SSLContext) -> set[str]:
    raw = socket.create_connection(("127.0.0.1", pw.https_port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname=sni) as tls:
        cert = tls.getpeercert()
    assert cert is not None
    return {v for k, v in cert["subjectAltName"] if k == "DNS"}


def _tls_status(pw: Portway, sni: str, host: str, path: str, ctx: ssl.SSLContext) -> int:
    raw_sock = socket.create_connection(("127.0.0.1", pw.https_port), timeout=5)
    with ctx.wrap_socket(raw_sock, server_hostname=sni) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while part := tls.recv(65536):
            data += part
    return int(data.split(b" ", 2)[1])


def _upload(pw: Portway, project: str, leaf: trustme.LeafCert) -> str:
    body = {
        "certificate": {
            "name": "c",
            "chain": "".join(c.bytes().decode() for c in leaf.cert_chain_pems),
            "key": leaf.private_key_pem.bytes().decode(),
        }
    }
    r = pw.api("POST", f"/v1/{project}/certificates", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["certificate"]["id"])


def test_another_projects_certificate_is_never_served_for_a_host(
    system: tuple[Portway, Backend, Backend], tmp_path: Path
) -> None:
    pw, a, b = system
    ca = trustme.CA()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.load_verify_locations(cafile=str(pw.data_dir / "ca.pem"))
    ctx.check_hostname = False  # the test reads the names itself
    _create(pw, "beta", "shop.cert.test", b.port, path_prefix="/two")
    seen_by_beta = len(b.seen)
    wild = _upload(pw, "alpha", ca.issue_cert("*.cert.test"))
    _create(pw, "alpha", "*.cert.test", a.port, tls={"certificate": wild})
    names = _eventually(lambda: _served_names(pw, "free.cert.test", ctx) == {"*.cert.test"})
    assert names, "alpha's wildcard certificate was never served for its own names"
    # beta has no certificate: the default one, not alpha's wildcard.
    assert _served_names(pw, "shop.cert.test", ctx) == DEFAULT_NAMES
    # Nor may beta's requests ride on a connection that got alpha's certificate: 421,
    # so the client opens a connection of its own (RFC 9110 §7.4).
    assert _tls_status(pw, "free.cert.test", "shop.cert.test", "/two/x", ctx) == 421
    assert _tls_status(pw, "free.cert.test", "more.cert.test", "/x", ctx) == 200
    assert len(b.seen) == seen_by_beta

    # alpha's certificate may name beta's host too; it is still never served for it.
    both = _upload(pw, "alpha", ca.issue_cert("mine.cert.test", "shop.cert.test"))
    _create(pw, "alpha", "mine.cert.test", a.port, tls={"certificate": both})
    expected = {"mine.cert.test", "shop.cert.test"}
    assert _eventually(lambda: _served_names(pw, "mine.cert.test", ctx) == expected)
    assert _served_names(pw, "shop.cert.test", ctx) == DEFAULT_NAMES

    # Once beta attaches its own certificate, that one is served for its host.
    own = _upload(pw, "beta", ca.issue_cert("shop.cert.test"))
    r = pw.api("GET", "/v1/beta/proxies", params={"hostname": "shop.cert.test"})
    proxy_id = r.json()["proxies"][0]["id"]
    patch = {"proxy": {"tls": {"certificate": own}}}
    r = pw.api("PATCH", f"/v1/beta/proxies/{proxy_id}", json=patch)
    assert r.status_code == 200, r.text
    assert _eventually(lambda: _served_names(pw, "shop.cert.test", ctx) == {"shop.cert.test"})


def test_a_shared_host_routes_each_prefix_to_its_project_and_nothing_else(
    system: tuple[Portway, Backend, Backend],
) -> None:
    pw, a, b = system
    zone = {"zone": {"name": "tools.zone.test", "shared_host": True}}
    r = pw.api("POST", "/v1/zones", json=zone)
    assert r.status_code == 201, r.text
    _create(pw, "alpha", "tools.zone.test", a.port, path_prefix="/alpha")
    _create(pw, "beta", "tools.zone.test", b.port, path_prefix="/beta")
    ready = lambda: _backend_of(pw.get("tools.zone.test", "/beta/x")) == "beta-backend"  # noqa: E731
    assert _eventually(ready)
    assert _backend_of(pw.get("tools.zone.test", "/alpha/x")) == "alpha-backend"
    # alpha also holds *.zone.test (the first test): it still never answers here.
    assert pw.get("tools.zone.test", "/other").status_code == 404
    assert pw.get("tools.zone.test", "/").status_code == 404
