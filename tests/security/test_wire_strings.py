"""Issue 7, defects 4 and 5: tenant strings that Portway writes into HTTP.

A tenant's ``session_persistence.cookie_name`` goes into the ``Set-Cookie`` line of every
response, and a health check's ``method``, ``path`` and ``host`` into the probe request
sent to backends. With CR/LF in them a tenant writes its own header lines, whole
responses (which a front proxy that reuses one connection hands to a request for another
tenant's hostname) or whole requests to a backend.

The attacks run end to end: a real ``portway serve``, real backends on loopback, and rows
written straight into the SQLite store with SQL, as a Portway without these rules wrote
them. The API must answer 422 naming the field; a stored row that breaks a rule must be
left out of the snapshot (its hostname gets 404, every other proxy keeps working) and be
shown by the API with ``status: "error"`` and the field in ``errors``.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h11
import pytest

from tests.integration.harness import (
    Backend,
    Portway,
    create_project_and_proxy,
    start_backend,
    wait_routed,
)

INJECTED = "X-Injected: yes"
# A cookie name that ends the real head early (Content-Length: 0) and writes a second,
# complete response after it: whoever reads the next response from this connection gets it.
FORGED_BODY = b"forged-by-alpha"
FORGING_COOKIE = (
    "s\r\nContent-Length: 0\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    f"Content-Length: {len(FORGED_BODY)}\r\n\r\n{FORGED_BODY.decode()}"
)
# A probe method that writes a whole second request to the backend.
SMUGGLING_METHOD = "GET /smuggled HTTP/1.1\r\nHost: victim.beta.example.org\r\n\r\nGET"
INJECTING_PATH = f"/probe\r\n{INJECTED}\r\nX-Rest:"


# -- helpers --------------------------------------------------------------------------


def raw_exchange(
    pw: Portway, requests: list[tuple[str, str]]
) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``(host, path)`` requests one after another on ONE connection, as a front
    proxy reusing a connection does; returns (status, headers, body) of each response
    as an HTTP client reads them off that connection."""
    conn = h11.Connection(h11.CLIENT)
    out: list[tuple[int, dict[str, str], bytes]] = []
    with socket.create_connection(("127.0.0.1", pw.http_port), timeout=5) as sock:
        for host, path in requests:
            sock.sendall(
                conn.send(h11.Request(method="GET", target=path, headers=[("Host", host)]))
            )
            sock.sendall(conn.send(h11.EndOfMessage()))
            status, headers, body = 0, {}, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
            out.append((status, headers, body))
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                break
            conn.start_next_cycle()
    return out


def raw_head(pw: Portway, host: str) -> bytes:
    """The bytes of the response head the data plane sends for ``host``."""
    with socket.create_connection(("127.0.0.1", pw.http_port), timeout=5) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


class RawBackend:
    """A backend that keeps every byte it receives and answers each head 200, so a
    test can see exactly what a probe put on the wire."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        received = self.received

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock = self.request
                sock.settimeout(0.3)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if data:
                        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    while chunk := sock.recv(65536):  # whatever else came on this connection
                        data += chunk
                except OSError:
                    pass
                received.append(data)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def probes(self, path: str) -> int:
        return sum(1 for r in list(self.received) if r.startswith(f"GET {path} ".encode()))

    def everything(self) -> bytes:
        return b"\n----\n".join(list(self.received))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def metric(pw: Portway, name: str) -> list[tuple[str, float]]:
    """Samples of metric ``name`` on the API's /metrics page: (labels text, value)."""
    text = pw.api("GET", "/metrics").text
    found = []
    for line in text.splitlines():
        m = re.match(rf"{name}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            found.append((m.group(1) or "", float(m.group(2))))
    return found


def wait_for(what: Callable[[], bool], timeout: float = 10, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message or what}")
        time.sleep(0.05)


def wait_applied(pw: Portway, revision: int) -> None:
    """Until the snapshot every data plane applied is at least ``revision``."""

    def applied() -> bool:
        samples = metric(pw, "portway_snapshot_applied_version")
        return bool(samples) and samples[0][1] >= revision

    wait_for(applied, message=f"snapshot {revision} applied")


def insert_proxy_row(
    pw: Portway,
    *,
    project: str,
    hostname: str,
    backend_ports: list[int],
    session_persistence: dict[str, Any] | None = None,
    health_check: dict[str, Any] | None = None,
) -> tuple[str, int]:
    """Write a proxy straight into the store with SQL, the way Portway wrote rows before
    these rules existed: one revision bump, the proxies and backends rows, one change-log
    row. Returns the proxy id and the new revision."""
    proxy_id = uuid.uuid4().hex
    now = "2026-01-01 00:00:00.000000"
    db = sqlite3.connect(pw.data_dir / "portway.db", timeout=10, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        revision = db.execute("SELECT value FROM revision WHERE id = 1").fetchone()[0] + 1
        db.execute("UPDATE revision SET value = ? WHERE id = 1", (revision,))
        db.execute(
            "INSERT INTO proxies (id, project, hostname, path_prefix, backend_port, algorithm,"
            " session_persistence, health_check, tls, cache, timeouts, limits, hash_key,"
            " source, created_at, updated_at, revision)"
            " VALUES (?, ?, ?, '/', 80, 'round_robin', ?, ?, ?, ?, NULL, NULL, NULL, 'api',"
            " ?, ?, ?)",
            (
                proxy_id,
                project,
                hostname,
                None if session_persistence is None else json.dumps(session_persistence),
                None if health_check is None else json.dumps(health_check),
                json.dumps({"certificate": None, "redirect_http": False, "hsts": False}),
                json.dumps({"enabled": False}),
                now,
                now,
                revision,
            ),
        )
        for port in backend_ports:
            db.execute(
                "INSERT INTO backends (id, proxy_id, address, port, weight, backup, source)"
                " VALUES (?, ?, '127.0.0.1', ?, 1, 0, 'api')",
                (uuid.uuid4().hex, proxy_id, port),
            )
        db.execute(
            "INSERT INTO changes (revision, project, actor, kind, action, object_id, proxy_id,"
            " before, after, at) VALUES (?, ?, 'pre-fix', 'proxy', 'create', ?, ?, NULL, NULL, ?)",
            (revision, project, proxy_id, proxy_id, now),
        )
        db.execute("COMMIT")
    finally:
        db.close()
    return proxy_id, revision


def create_project(pw: Portway, name: str) -> None:
    r = pw.api("POST", "/v1/projects", json={"project": {"name": name}})
    assert r.status_code in (201, 409), r.text


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_backend() -> Iterator[Backend]:
    backend = start_backend("b0")
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def api_portway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portway]:
    """One node for the API checks (each test uses its own hostname)."""
    pw = Portway(tmp_path_factory.mktemp("wire-api") / "data")
    pw.start()
    create_project(pw, "alpha")
    yield pw
    pw.stop()


@pytest.fixture
def portway(tmp_path: Path) -> Iterator[Portway]:
    pw = Portway(tmp_path / "data")
    pw.start()
    yield pw
    pw.stop()


@pytest.fixture
def raw_backend() -> Iterator[RawBackend]:
    backend = RawBackend()
    yield backend
    backend.stop()


_names = iter(range(10**6))


def fresh_host() -> str:
    return f"w{next(_names)}.alpha.example.org"


def create(pw: Portway, backend_port: int, **fields: Any) -> Any:
    body = {
        "proxy": {
            "hostname": fresh_host(),
            "backends": [{"address": "127.0.0.1", "port": backend_port}],
            **fields,
        }
    }
    return pw.api("POST", "/v1/alpha/proxies", json=body)


def error_of(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json().get("error", {})
    return error


# -- defect 4: cookie names -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["cookie", "app_cookie"])
@pytest.mark.parametrize(
    "name",
    [
        f"s\r\n{INJECTED}",
        FORGING_COOKIE,
        "s\nX: y",
        "s\rX: y",
        "s\x00",
        "a b",
        "a;b",
        "a=b",
        "a,b",
        '"quoted"',
        "(x)",
        "caf\u00e9",
        "a\tb",
        "",
    ],
)
def test_cookie_name_outside_the_token_grammar_gets_422(
    api_portway: Portway, shared_backend: Backend, kind: str, name: str
) -> None:
    pw = api_portway
    r = create(pw, shared_backend.port, session_persistence={"type": kind, "cookie_name": name})

    def on_the_wire() -> str:  # only evaluated when the assertion fails: the attack's effect
        host = r.json()["proxy"]["hostname"]
        wait_routed(pw, host)
        return repr(raw_head(pw, host))

    assert r.status_code == 422, f"accepted ({r.status_code}); a client then got: {on_the_wire()}"
    assert error_of(r).get("field") == "session_persistence.cookie_name", r.text


def test_cookie_name_with_crlf_is_refused_on_update_too(
    api_portway: Portway, shared_backend: Backend
) -> None:
    pw = api_portway
    created = create(pw, shared_backend.port, session_persistence={"type": "cookie"})
    assert created.status_code == 201, created.text
    proxy = created.json()["proxy"]
    r = pw.api(
        "PATCH",
        f"/v1/alpha/proxies/{proxy['id']}",
        json={"proxy": {"session_persistence": {"type": "cookie", "cookie_name": FORGING_COOKIE}}},
    )

    def on_the_wire() -> str:
        wait_for(lambda: b"Content-Length: 0" in raw_head(pw, proxy["hostname"]), timeout=5)
        return repr(raw_head(pw, proxy["hostname"]))

    assert r.status_code == 422, f"accepted ({r.status_code}); a client then got: {on_the_wire()}"
    assert error_of(r).get("field") == "session_persistence.cookie_name", r.text


@pytest.mark.parametrize("name", ["JSESSIONID", "PORTWAY_SRV", "sid", "a!#$%&'*+-.^_`|~9"])
def test_token_cookie_names_are_accepted_and_set(
    api_portway: Portway, shared_backend: Backend, name: str
) -> None:
    pw = api_portway
    r = create(pw, shared_backend.port, session_persistence={"type": "cookie", "cookie_name": name})
    assert r.status_code == 201, r.text
    proxy = r.json()["proxy"]
    assert proxy["status"] == "active" and proxy["errors"] == []
    wait_routed(pw, proxy["hostname"])
    cookie = pw.get(proxy["hostname"]).headers["set-cookie"]
    assert cookie.startswith(f"{name}="), cookie


# -- defect 5: health-check method, path and host --------------------------------------


@pytest.mark.parametrize(
    "method", [SMUGGLING_METHOD, "GET\r\nX: y", "GE T", "GET ", "", "G\x00T", "GET/"]
)
def test_probe_method_outside_the_token_grammar_gets_422(
    api_portway: Portway, raw_backend: RawBackend, method: str
) -> None:
    pw = api_portway
    check = {"method": method, "interval": 0.2, "timeout": 1}
    r = create(pw, raw_backend.port, health_check=check)

    def at_the_backend() -> str:
        wait_for(lambda: bool(raw_backend.received), timeout=5)
        return repr(raw_backend.everything())

    assert r.status_code == 422, f"accepted ({r.status_code}); the backend got: {at_the_backend()}"
    assert error_of(r).get("field") == "health_check.method", r.text


@pytest.mark.parametrize(
    "path",
    [
        INJECTING_PATH,
        "/\nX: y",
        "/a b",
        "/a\x00",
        "/%zz",
        "/%4",
        "/a#frag",
        "/caf\u00e9",
        "/a?b c",
        "*",
        "http://other.example.org/",
        "",
    ],
)
def test_probe_path_outside_origin_form_gets_422(
    api_portway: Portway, raw_backend: RawBackend, path: str
) -> None:
    pw = api_portway
    check = {"path": path, "interval": 0.2, "timeout": 1}
    r = create(pw, raw_backend.port, health_check=check)

    def at_the_backend() -> str:
        wait_for(lambda: bool(raw_backend.received), timeout=5)
        return repr(raw_backend.everything())

    assert r.status_code == 422, f"accepted ({r.status_code}); the backend got: {at_the_backend()}"
    assert error_of(r).get("field") == "health_check.path", r.text


@pytest.mark.parametrize(
    "host", ["app.example.org\r\nX-Injected: yes", "app.example.org x", "app example.org", ""]
)
def test_probe_host_outside_the_hostname_grammar_gets_422(
    api_portway: Portway, shared_backend: Backend, host: str
) -> None:
    r = create(api_portway, shared_backend.port, health_check={"host": host})
    assert r.status_code == 422, r.text
    assert error_of(r).get("field") == "health_check.host", r.text


def test_probe_sends_a_valid_method_path_and_host_unchanged(
    api_portway: Portway, raw_backend: RawBackend
) -> None:
    check = {
        "method": "HEAD",
        "path": "/health/ready?full=1&x=%2F;v=@:",
        "host": "status.alpha.example.org",
        "interval": 0.2,
        "timeout": 1,
    }
    r = create(api_portway, raw_backend.port, health_check=check)
    assert r.status_code == 201, r.text
    wait_for(lambda: bool(raw_backend.received), message="a probe")
    head = raw_backend.received[0].split(b"\r\n")
    assert head[0] == b"HEAD /health/ready?full=1&x=%2F;v=@: HTTP/1.1"
    assert b"Host: status.alpha.example.org" in head


# -- rows stored before the fix ---------------------------------------------------------


def test_stored_forging_cookie_is_not_served_to_another_tenant(portway: Portway) -> None:
    pw = portway
    attacker_backend, victim_backend = start_backend("alpha-app"), start_backend("victim")
    try:
        victim = create_project_and_proxy(
            pw, "beta", "victim.beta.example.org", [victim_backend.port]
        )
        create_project(pw, "alpha")
        bad_id, revision = insert_proxy_row(
            pw,
            project="alpha",
            hostname="evil.alpha.example.org",
            backend_ports=[attacker_backend.port],
            session_persistence={"type": "cookie", "cookie_name": FORGING_COOKIE},
        )
        wait_applied(pw, revision)

        # A front proxy forwards one client's request for alpha and then another
        # client's request for beta over the same kept-alive connection.
        answers = raw_exchange(
            pw, [("evil.alpha.example.org", "/"), ("victim.beta.example.org", "/")]
        )
        assert len(answers) == 2, answers
        (first_status, first_headers, _), (_, _, second_body) = answers
        assert FORGED_BODY not in second_body, (
            f"beta's client was handed alpha's forgery: {answers}"
        )
        assert json.loads(second_body)["backend"] == "victim", answers
        assert first_status == 404, answers  # the bad proxy is not served at all
        assert "set-cookie" not in first_headers
        assert attacker_backend.seen == []

        shown = pw.api("GET", f"/v1/alpha/proxies/{bad_id}")
        assert shown.status_code == 200, shown.text
        proxy = shown.json()["proxy"]
        assert proxy["status"] == "error", proxy
        assert [e["field"] for e in proxy["errors"]] == ["session_persistence.cookie_name"]
        listed = pw.api("GET", "/v1/beta/proxies").json()["proxies"]
        assert [(p["id"], p["status"]) for p in listed] == [(victim["id"], "active")]
        assert metric(pw, "portway_proxies_disabled") == [('{project="alpha"}', 1.0)]
    finally:
        attacker_backend.stop()
        victim_backend.stop()


def test_stored_crlf_cookie_stays_disabled_after_restart_until_the_tenant_fixes_it(
    portway: Portway, shared_backend: Backend
) -> None:
    pw = portway
    create_project(pw, "alpha")
    good = create_project_and_proxy(pw, "alpha", "good.alpha.example.org", [shared_backend.port])
    bad_id, revision = insert_proxy_row(
        pw,
        project="alpha",
        hostname="bad.alpha.example.org",
        backend_ports=[shared_backend.port],
        session_persistence={"type": "cookie", "cookie_name": f"s\r\n{INJECTED}"},
    )
    wait_applied(pw, revision)
    # An upgrade with such a row already stored: the first snapshot leaves it out too.
    pw.stop()
    pw.start()
    head = raw_head(pw, "bad.alpha.example.org")
    assert INJECTED.encode() not in head, head
    assert head.startswith(b"HTTP/1.1 404 "), head
    assert pw.get(good["hostname"]).status_code == 200
    proxy = pw.api("GET", f"/v1/alpha/proxies/{bad_id}").json()["proxy"]
    assert proxy["status"] == "error"
    assert proxy["errors"][0]["field"] == "session_persistence.cookie_name"
    assert "token" in proxy["errors"][0]["message"]

    fixed = pw.api(
        "PATCH",
        f"/v1/alpha/proxies/{bad_id}",
        json={"proxy": {"session_persistence": {"type": "cookie", "cookie_name": "sid"}}},
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["proxy"]["status"] == "active"
    wait_routed(pw, "bad.alpha.example.org")
    assert pw.get("bad.alpha.example.org").headers["set-cookie"].startswith("sid=")
    assert metric(pw, "portway_proxies_disabled") == []
    pw.stop()
    # Logged once per node start while it was disabled, not on every snapshot.
    assert pw.output.count(f"proxy {bad_id} disabled") == 2, pw.output


def test_stored_crlf_probes_are_never_sent(portway: Portway, raw_backend: RawBackend) -> None:
    pw = portway
    create_project(pw, "alpha")
    fast = {"interval": 0.2, "timeout": 1}
    good = create_project_and_proxy(
        pw,
        "alpha",
        "good.alpha.example.org",
        [raw_backend.port],
        health_check={"path": "/good-probe", **fast},
    )
    smuggling_id, _ = insert_proxy_row(
        pw,
        project="alpha",
        hostname="smuggle.alpha.example.org",
        backend_ports=[raw_backend.port],
        health_check={"method": SMUGGLING_METHOD, **fast},
    )
    injecting_id, revision = insert_proxy_row(
        pw,
        project="alpha",
        hostname="inject.alpha.example.org",
        backend_ports=[raw_backend.port],
        health_check={"path": INJECTING_PATH, **fast},
    )
    wait_applied(pw, revision)
    # Probes of the good proxy keep arriving; give the bad ones as long to show up.
    seen = raw_backend.probes("/good-probe")
    wait_for(lambda: raw_backend.probes("/good-probe") >= seen + 4, message="good probes")
    everything = raw_backend.everything()
    assert b"smuggled" not in everything, everything
    assert INJECTED.encode() not in everything, everything
    assert pw.get(good["hostname"]).status_code == 200
    for proxy_id, field in (
        (smuggling_id, "health_check.method"),
        (injecting_id, "health_check.path"),
    ):
        proxy = pw.api("GET", f"/v1/alpha/proxies/{proxy_id}").json()["proxy"]
        assert proxy["status"] == "error" and proxy["errors"][0]["field"] == field, proxy
        assert pw.get(proxy["hostname"]).status_code == 404
    assert metric(pw, "portway_proxies_disabled") == [('{project="alpha"}', 2.0)]
