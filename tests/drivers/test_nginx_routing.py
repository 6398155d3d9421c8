"""Routing, balancing, headers and error pages through a real nginx driven by Portway.

Each test takes a runner with ``route(*proxies)`` and ``port`` (the ``dataplane``
fixture), so the same bodies can run over the built-in data plane too.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import threading
import time
from collections.abc import Callable

import pytest

from portway.model import Backend, Privacy
from portway.protocol.pages import error_response
from tests.dataplane.conftest import Origin, proxy_for, raw
from tests.drivers.conftest import NginxRunner


@pytest.fixture
def dataplane(nginx: NginxRunner) -> NginxRunner:
    return nginx


def get(
    port: int, host: str, path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Host": host, **(headers or {})})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, response


def page_body(status: int) -> bytes:
    return error_response(status, close=False).split(b"\r\n\r\n", 1)[1]


def test_host_wildcard_and_prefix_routing(
    dataplane: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    exact, wild, tool, other = (make_origin(n) for n in ("exact", "wild", "tool", "other"))
    dataplane.route(
        proxy_for("a.example.org", exact.backend()),
        proxy_for("*.example.org", wild.backend()),
        proxy_for("tools.example.org", tool.backend(), prefix="/tool"),
        proxy_for("tools.example.org", other.backend(), prefix="/"),
    )
    port = dataplane.port
    assert get(port, "a.example.org", "/x")[1] == b"exact /x 0"
    assert get(port, "A.Example.org.", "/y")[1] == b"exact /y 0"
    assert get(port, "b.example.org", "/x")[1] == b"wild /x 0"
    # One label only, as the built-in route table.
    status, body, _ = get(port, "c.b.example.org")
    assert (status, body) == (404, page_body(404))
    assert get(port, "tools.example.org", "/tool")[1] == b"tool /tool 0"
    assert get(port, "tools.example.org", "/tool/x?q=1")[1] == b"tool /tool/x?q=1 0"
    assert get(port, "tools.example.org", "/toolbox")[1] == b"other /toolbox 0"
    status, body, response = get(port, "nobody.example.com")
    assert (status, body) == (404, page_body(404))
    assert response.getheader("Cache-Control") == "no-store"


def test_exact_host_of_another_project_never_falls_back_to_wildcard(
    dataplane: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    wild = proxy_for("*.example.org", a.backend())
    mine = proxy_for("app.example.org", b.backend(), prefix="/two")
    other_project = dataclasses.replace(mine, project="q")
    dataplane.route(wild, other_project)
    assert get(dataplane.port, "app.example.org", "/two")[1] == b"b /two 0"
    assert get(dataplane.port, "app.example.org", "/other")[0] == 404
    dataplane.route(wild, mine)  # same project: the wildcard answers what the host leaves out
    assert get(dataplane.port, "app.example.org", "/other")[1] == b"a /other 0"


def test_weights_split_traffic(
    dataplane: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    dataplane.route(
        proxy_for(
            "app.example.org",
            a.backend(weight=3),
            b.backend(weight=1),
            algorithm="weighted_round_robin",
        )
    )
    seen = collections.Counter(
        get(dataplane.port, "app.example.org")[1].split()[0] for _ in range(40)
    )
    assert seen == {b"a": 30, b"b": 10}


def test_round_robin_takes_each_in_turn(
    dataplane: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    dataplane.route(proxy_for("app.example.org", a.backend(weight=5), b.backend()))
    seen = collections.Counter(
        get(dataplane.port, "app.example.org")[1].split()[0] for _ in range(20)
    )
    assert seen == {b"a": 10, b"b": 10}


def test_least_conn_avoids_the_busy_backend(
    dataplane: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    dataplane.route(proxy_for("app.example.org", a.backend(), b.backend(), algorithm="least_conn"))
    slow = threading.Thread(target=get, args=(dataplane.port, "app.example.org", "/slow"))
    slow.start()
    time.sleep(0.3)  # the slow request is in flight on one backend
    busy = b"a" if any(s.path == "/slow" for s in a.seen) else b"b"
    quick = {get(dataplane.port, "app.example.org")[1].split()[0] for _ in range(6)}
    slow.join()
    assert quick == {b"a", b"b"} - {busy}


def test_backups_only_when_no_primary_answers(
    dataplane: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    primary, backup = make_origin("primary"), make_origin("backup")
    dataplane.route(proxy_for("app.example.org", primary.backend(), backup.backend(backup=True)))
    assert {get(dataplane.port, "app.example.org")[1] for _ in range(5)} == {b"primary / 0"}
    dead = Backend(id="dead", address="127.0.0.1", port=_closed_port())
    dataplane.route(proxy_for("app.example.org", dead, backup.backend(backup=True)))
    assert {get(dataplane.port, "app.example.org")[1] for _ in range(5)} == {b"backup / 0"}


def _closed_port() -> int:
    from tests.drivers.conftest import free_port

    return free_port()


def test_no_backend_gets_503_page_and_refused_backend_502(dataplane: NginxRunner) -> None:
    dataplane.route(
        proxy_for("empty.example.org"),
        proxy_for("dead.example.org", Backend(id="d", address="127.0.0.1", port=_closed_port())),
    )
    status, body, response = get(dataplane.port, "empty.example.org")
    assert (status, body) == (503, page_body(503))
    assert response.getheader("Retry-After") == "5"
    status, body, _ = get(dataplane.port, "dead.example.org")
    assert (status, body) == (502, page_body(502))


def test_forwarded_headers_replace_the_clients(dataplane: NginxRunner, origin: Origin) -> None:
    dataplane.route(proxy_for("app.example.org", origin.backend()))
    forged = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "1",
        "Forwarded": "for=6.6.6.6",
        "Proxy": "http://evil:1",
    }
    get(dataplane.port, "app.example.org:8080", "/h", forged)
    seen = origin.seen[-1]
    assert seen.header("Host") == "app.example.org:8080"
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("X-Forwarded-Host") == "app.example.org:8080"
    assert seen.header("X-Forwarded-Port") == str(dataplane.port)
    assert seen.header("Forwarded") == 'for=127.0.0.1;proto=http;host="app.example.org:8080"'
    assert seen.header("Proxy") is None


def test_trusted_peer_headers_are_appended_to(
    make_nginx: Callable[..., NginxRunner], origin: Origin
) -> None:
    runner = make_nginx(trusted_proxies=("127.0.0.0/8",))
    runner.route(proxy_for("app.example.org", origin.backend()))
    get(
        runner.port,
        "app.example.org",
        "/",
        {
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "Forwarded": "for=203.0.113.9",
        },
    )
    seen = origin.seen[-1]
    assert seen.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "https"
    assert (
        seen.header("Forwarded") == "for=203.0.113.9, for=127.0.0.1;proto=http;host=app.example.org"
    )


def test_absolute_form_target_is_routed_and_forwarded_by_its_own_host(
    dataplane: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    """RFC 9112 §3.2.2: the target's authority replaces Host; the backend gets
    origin-form and the Host it was routed for, never another site's name."""
    a, b = make_origin("a"), make_origin("b")
    dataplane.route(
        proxy_for("a.example.org", a.backend()), proxy_for("b.example.org", b.backend())
    )
    request = (
        b"GET http://b.example.org/x HTTP/1.1\r\nHost: a.example.org\r\nConnection: close\r\n\r\n"
    )
    response, _ = raw(dataplane.port, request)
    assert response.endswith(b"b /x 0")
    assert b.seen[-1].header("Host") == "b.example.org"
    assert not a.seen


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted-peer"])
@pytest.mark.parametrize(
    ("node", "setting"), [(True, "off"), (False, "inherit")], ids=["proxy-off", "node-off"]
)
def test_privacy_off_sends_no_client_address_and_none_of_the_clients(
    make_nginx: Callable[..., NginxRunner], origin: Origin, node: bool, setting: str, trusted: bool
) -> None:
    runner = make_nginx(forwarded_for=node, trusted_proxies=("127.0.0.0/8",) if trusted else ())
    privacy = Privacy(forwarded_for=setting)
    runner.route(proxy_for("app.example.org", origin.backend(), privacy=privacy))
    spoofs = {"X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6"}
    get(runner.port, "app.example.org", "/", spoofs)
    seen = origin.seen[-1]
    assert [seen.header(name) for name in spoofs] == [None, None, None]
    assert (seen.header("X-Forwarded-Proto"), seen.header("X-Forwarded-Host")) == (
        "http",
        "app.example.org",
    )


def test_privacy_on_overrides_a_node_default_of_off(
    make_nginx: Callable[..., NginxRunner], origin: Origin
) -> None:
    runner = make_nginx(forwarded_for=False)
    on = proxy_for("on.example.org", origin.backend(), privacy=Privacy(forwarded_for="on"))
    runner.route(on, proxy_for("off.example.org", origin.backend()))
    get(runner.port, "on.example.org", "/", {"X-Real-IP": "6.6.6.6"})
    seen = origin.seen[-1]
    assert (seen.header("X-Forwarded-For"), seen.header("X-Real-IP")) == ("127.0.0.1", None)
    assert seen.header("Forwarded") == "for=127.0.0.1;proto=http;host=on.example.org"
    get(runner.port, "off.example.org", "/")
    assert origin.seen[-1].header("X-Forwarded-For") is None
