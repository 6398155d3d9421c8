"""Changes under load, on every data plane: snapshots that add, change and remove
proxies and backends are applied while clients keep requesting, and no request fails.

The clients open a new connection per request: a keep-alive client that reuses an idle
connection blindly can lose a request to the close race every HTTP/1.1 server has when it
retires a connection (docs/dataplanes.md, "Reloads and open connections"); RFC 9112
§9.3.1 lets such a client retry."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable

import pytest

from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for

CLIENTS = 3
CHANGES = 10  # each one a reload for nginx, and for HAProxy most of them


def _client_loop(port: int, stop: threading.Event, failures: list[str], counts: list[int]) -> None:
    count = 0
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/", headers={"Host": "app.example.org", "Connection": "close"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or not body.startswith((b"a ", b"b ", b"c ")):
                failures.append(f"{response.status} {body[:60]!r}")
        except OSError as exc:  # every failure is a finding: collect it, never raise here
            failures.append(repr(exc))
        finally:
            conn.close()
        count += 1
    counts.append(count)


@pytest.mark.feature("applying")
def test_snapshots_applied_under_load_fail_no_request(
    plane: Plane, make_origin: Callable[[str], Origin]
) -> None:
    a, b, c = make_origin("a"), make_origin("b"), make_origin("c")
    plane.route(proxy_for("app.example.org", a.backend(), b.backend()))
    stop, failures, counts = threading.Event(), list[str](), list[int]()
    clients = [
        threading.Thread(target=_client_loop, args=(plane.port, stop, failures, counts))
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    sets = [(a, b), (a, b, c), (c,), (b, c), (a,)]
    try:
        for i in range(CHANGES):
            members = [o.backend(weight=1 + i % 3) for o in sets[i % len(sets)]]
            others = [
                proxy_for(f"other{j}.example.org", c.backend(), prefix="/p" if j % 2 else "/")
                for j in range(i % 4)
            ]
            assert plane.publish([proxy_for("app.example.org", *members), *others])
    finally:
        stop.set()
        for client in clients:
            client.join(15)
    assert failures == []
    assert len(counts) == CLIENTS and min(counts) > 0
    assert a.seen and b.seen and c.seen
