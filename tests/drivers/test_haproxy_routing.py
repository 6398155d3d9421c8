"""Routing, balancing, stickiness, health checks, headers and error pages through a real
HAProxy driven by Portway (the bodies follow tests/drivers/test_nginx_routing.py)."""

from __future__ import annotations

import collections
import dataclasses
import http.client
import threading
import time
from collections.abc import Callable

from portway.model import Backend, HealthCheck, SessionPersistence
from portway.protocol.pages import error_response
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.haproxy_runner import HaproxyRunner, closed_port


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


def names(port: int, host: str, count: int) -> collections.Counter[bytes]:
    return collections.Counter(get(port, host)[1].split()[0] for _ in range(count))


def test_host_wildcard_and_prefix_routing(
    haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]
) -> None:
    exact, wild, tool, other = (make_origin(n) for n in ("exact", "wild", "tool", "other"))
    haproxy.route(
        proxy_for("a.example.org", exact.backend()),
        proxy_for("*.example.org", wild.backend()),
        proxy_for("tools.example.org", tool.backend(), prefix="/tool"),
        proxy_for("tools.example.org", other.backend(), prefix="/"),
    )
    port = haproxy.port
    assert get(port, "a.example.org", "/x")[1] == b"exact /x 0"
    assert get(port, "A.Example.org.:80", "/y")[1] == b"exact /y 0"
    assert get(port, "b.example.org", "/x")[1] == b"wild /x 0"
    status, body, _ = get(port, "c.b.example.org")  # one label only
    assert (status, body) == (404, page_body(404))
    assert get(port, "tools.example.org", "/tool")[1] == b"tool /tool 0"
    assert get(port, "tools.example.org", "/tool/x?q=1")[1] == b"tool /tool/x?q=1 0"
    assert get(port, "tools.example.org", "/toolbox")[1] == b"other /toolbox 0"
    status, body, response = get(port, "nobody.example.com")
    assert (status, body) == (404, page_body(404))
    assert response.getheader("Cache-Control") == "no-store"


def test_exact_host_of_another_project_never_falls_back_to_wildcard(
    haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    wild = proxy_for("*.example.org", a.backend())
    mine = proxy_for("app.example.org", b.backend(), prefix="/two")
    haproxy.route(wild, dataclasses.replace(mine, project="q"))
    assert get(haproxy.port, "app.example.org", "/two")[1] == b"b /two 0"
    assert get(haproxy.port, "app.example.org", "/other")[0] == 404
    haproxy.route(wild, mine)  # same project: the wildcard answers what the host leaves out
    assert get(haproxy.port, "app.example.org", "/other")[1] == b"a /other 0"


def test_weights_split_traffic_and_round_robin_ignores_them(
    haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    weighted = proxy_for(
        "w.example.org", a.backend(weight=3), b.backend(), algorithm="weighted_round_robin"
    )
    plain = proxy_for("r.example.org", a.backend(weight=5), b.backend())
    haproxy.route(weighted, plain)
    assert names(haproxy.port, "w.example.org", 40) == {b"a": 30, b"b": 10}
    assert names(haproxy.port, "r.example.org", 20) == {b"a": 10, b"b": 10}


def test_least_conn_avoids_the_busy_backend(
    haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    haproxy.route(proxy_for("app.example.org", a.backend(), b.backend(), algorithm="least_conn"))
    slow = threading.Thread(target=get, args=(haproxy.port, "app.example.org", "/slow"))
    slow.start()
    time.sleep(0.3)
    busy = b"a" if any(s.path == "/slow" for s in a.seen) else b"b"
    quick = {get(haproxy.port, "app.example.org")[1].split()[0] for _ in range(6)}
    slow.join()
    assert quick == {b"a", b"b"} - {busy}


def test_source_and_hash_balancing_stick(
    haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    haproxy.route(
        proxy_for("s.example.org", a.backend(), b.backend(), algorithm="source_ip"),
        proxy_for(
            "h.example.org",
            a.backend(),
            b.backend(),
            algorithm="consistent_hash",
            hash_key="header:X-User",
        ),
    )
    assert len(names(haproxy.port, "s.example.org", 10)) == 1
    for user in ("alice", "bob", "carol"):
        seen = {get(haproxy.port, "h.example.org", headers={"X-User": user})[1] for _ in range(5)}
        assert len(seen) == 1


def test_cookie_stickiness(haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]) -> None:
    a, b = make_origin("a"), make_origin("b")
    sticky = SessionPersistence(type="cookie", cookie_name="PW")
    haproxy.route(
        proxy_for("app.example.org", a.backend(), b.backend(), session_persistence=sticky)
    )
    _, first, response = get(haproxy.port, "app.example.org")
    cookie = response.getheader("Set-Cookie") or ""
    assert cookie.startswith("PW=s")
    value = cookie.split(";", 1)[0]
    again = {get(haproxy.port, "app.example.org", headers={"Cookie": value})[1] for _ in range(6)}
    assert again == {first}
    # The backend never sees Portway's cookie (``indirect``).
    assert all("PW=" not in (s.header("Cookie") or "") for s in a.seen + b.seen)


def test_backups_only_when_no_primary_answers(
    haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]
) -> None:
    primary, backup = make_origin("primary"), make_origin("backup")
    haproxy.route(proxy_for("app.example.org", primary.backend(), backup.backend(backup=True)))
    assert {get(haproxy.port, "app.example.org")[1] for _ in range(5)} == {b"primary / 0"}
    dead = Backend(id="dead", address="127.0.0.1", port=closed_port())
    haproxy.route(proxy_for("app.example.org", dead, backup.backend(backup=True)))
    # The dead member took the primary's slot live; HAProxy marks it down at its first
    # refused connections (``observe layer4``), and from then on the backup answers.
    for _ in range(10):
        if get(haproxy.port, "app.example.org")[1] == b"backup / 0":
            break
    assert {get(haproxy.port, "app.example.org")[1] for _ in range(5)} == {b"backup / 0"}


def test_active_http_check_ejects_a_failing_backend(
    haproxy: HaproxyRunner, make_origin: Callable[[str], Origin]
) -> None:
    good = make_origin("good")
    dead = Backend(id="dead", address="127.0.0.1", port=closed_port())
    check = HealthCheck(path="/h", interval=0.2, timeout=0.5, rise=1, fall=1)
    haproxy.route(proxy_for("app.example.org", good.backend(), dead, health_check=check))
    deadline = time.monotonic() + 5
    while "/h" not in {s.path for s in good.seen} and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few probe rounds: the dead one is marked down
    assert {get(haproxy.port, "app.example.org")[0] for _ in range(10)} == {200}
    probe = next(s for s in good.seen if s.path == "/h")
    assert probe.method == "GET" and probe.header("Host") == "app.example.org"
    # srv_op_state (6th field): 2 running, 0 stopped by its checks.
    rows = [line.split() for line in haproxy.ask("show servers state").splitlines()[2:]]
    assert [r[5] for r in rows if len(r) > 5 and r[3] in ("s1", "s2")] == ["2", "0"]


def test_no_backend_gets_503_page_and_refused_backend_502(haproxy: HaproxyRunner) -> None:
    haproxy.route(
        proxy_for("empty.example.org"),
        proxy_for("dead.example.org", Backend(id="d", address="127.0.0.1", port=closed_port())),
    )
    status, body, response = get(haproxy.port, "empty.example.org")
    assert (status, body) == (503, page_body(503))
    assert response.getheader("Retry-After") == "5"
    status, body, _ = get(haproxy.port, "dead.example.org")
    assert status in (502, 503) and body == page_body(status)


def test_forwarded_headers_replace_the_clients(haproxy: HaproxyRunner, origin: Origin) -> None:
    haproxy.route(proxy_for("app.example.org", origin.backend()))
    forged = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "1",
        "Forwarded": "for=6.6.6.6",
        "Proxy": "http://evil:1",
    }
    get(haproxy.port, "app.example.org:8080", "/h", forged)
    seen = origin.seen[-1]
    assert seen.header("Host") == "app.example.org:8080"
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("X-Forwarded-Host") == "app.example.org:8080"
    assert seen.header("X-Forwarded-Port") == str(haproxy.port)
    assert seen.header("Forwarded") == 'for=127.0.0.1;proto=http;host="app.example.org:8080"'
    assert seen.header("Proxy") is None


def test_trusted_peer_headers_are_appended_to(
    make_haproxy: Callable[..., HaproxyRunner], origin: Origin
) -> None:
    runner = make_haproxy(trusted_proxies=("127.0.0.0/8",))
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


def test_declared_body_over_the_limit_gets_the_413_page(
    haproxy: HaproxyRunner, origin: Origin
) -> None:
    from portway.model import Limits
    from tests.dataplane.conftest import raw

    haproxy.route(proxy_for("app.example.org", origin.backend(), limits=Limits(max_body_bytes=10)))
    request = b"POST / HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 11\r\n\r\nhello world"
    response, _ = raw(haproxy.port, request)
    assert response.startswith(b"HTTP/1.1 413 ") and response.endswith(page_body(413))
    small = b"POST / HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 5\r\n\r\nhello"
    assert raw(haproxy.port, small)[0].endswith(b"one / 5")
    assert not any(s.body_len == 11 for s in origin.seen)
