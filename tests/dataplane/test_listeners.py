"""Ports of their own (issue 13): opened when a proxy claims one, closed when the last
goes, in the same data plane as the shared listeners and without touching their
connections. Real loopback sockets and real TLS (trustme)."""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from portway.dataplane.listeners import ListenerKey, plan, wanted
from portway.model.listen_policy import ListenPolicy, PortRange
from tests.dataplane.conftest import H_APP, Origin, ProxyRunner, proxy_for, raw, status_of

GET = b"GET /x HTTP/1.1\r\n" + H_APP + b"Connection: close\r\n\r\n"


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def policy_for(*ports: int) -> ListenPolicy:
    return ListenPolicy(tuple(PortRange("127.0.0.1", p, p) for p in ports))


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        # The probe's own connection sat in the accept queue as the listener closed: the
        # port is going, not gone (the next probe is refused).
        return False
    return False


def on_port(origin: Origin, port: int, protocol: str = "http", host: str = "app.example.org"):  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        proxy_for(host, origin.backend(), pid=f"{host}:{port}"),
        listen_port=port,
        protocol=protocol,
    )


# -- the plan (pure) ------------------------------------------------------------------


def test_the_plan_opens_claimed_allowed_ports_and_closes_the_rest() -> None:
    policy = ListenPolicy(
        (PortRange("127.0.0.1", 8000, 8010), PortRange("127.0.0.2", 8005, 8005)),
        reserved=frozenset({8001}),
    )
    target = wanted({8000: "http", 8001: "http", 8005: "tcp", 9000: "http"}, policy)
    assert target == {
        ListenerKey("127.0.0.1", 8000, "http"),
        ListenerKey("127.0.0.1", 8005, "tcp"),
        ListenerKey("127.0.0.2", 8005, "tcp"),
    }  # 8001 is Portway's own and 9000 not allowed: neither opens
    step = plan(
        {ListenerKey("127.0.0.1", 8000, "https"), ListenerKey("127.0.0.1", 8003, "http")}, target
    )
    assert step.close == (
        ListenerKey("127.0.0.1", 8000, "https"),
        ListenerKey("127.0.0.1", 8003, "http"),
    )
    assert ListenerKey("127.0.0.1", 8000, "http") in step.open and len(step.open) == 3
    assert not plan(target, target)


# -- over loopback ----------------------------------------------------------------------


def test_a_port_opens_with_its_first_proxy_and_closes_with_its_last(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    port, other = free_ports(2)
    runner = make_proxy(listen_policy=policy_for(port, other))
    assert refused(port)
    runner.route(on_port(origin, port), on_port(origin, port, host="b.example.org"))
    assert status_of(raw(port, GET)[0]) == 200
    assert origin.seen[-1].header("X-Forwarded-Port") == str(port)
    runner.route(on_port(origin, port, host="b.example.org"))  # one proxy left: still open
    assert status_of(raw(port, GET)[0]) == 404  # app.example.org left this port
    runner.route()
    assert refused(port) and runner.dp.port_servers == {}


def test_a_port_proxy_answers_on_its_port_only(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    runner.route(on_port(origin, port))
    assert status_of(raw(runner.port, GET)[0]) == 404  # not on the shared listener


def test_a_claimed_port_outside_the_policy_is_never_opened(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    allowed, forbidden = free_ports(2)
    runner = make_proxy(listen_policy=policy_for(allowed))
    runner.route(on_port(origin, forbidden))
    assert refused(forbidden) and runner.dp.port_servers == {}


def test_a_port_already_taken_is_reported_and_the_rest_open(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    taken, free = free_ports(2)
    squatter = socket.socket()  # no SO_REUSEPORT: nobody else may bind it
    squatter.bind(("127.0.0.1", taken))
    squatter.listen(1)
    try:
        runner = make_proxy(listen_policy=policy_for(taken, free))
        runner.route(on_port(origin, taken), on_port(origin, free, host="b.example.org"))
        assert ListenerKey("127.0.0.1", taken, "http") in runner.dp.listener_errors
        assert (
            status_of(
                raw(free, b"GET / HTTP/1.1\r\nHost: b.example.org\r\nConnection: close\r\n\r\n")[0]
            )
            == 200
        )
    finally:
        squatter.close()


def _keepalive(port: int, host: bytes = b"app.example.org") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    _ask(sock, host)
    return sock


def _ask(sock: socket.socket, host: bytes = b"app.example.org") -> int:
    sock.sendall(b"GET /k HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _length(data):
        part = sock.recv(65536)
        if not part:
            raise ConnectionError("closed")
        data += part
    return status_of(data)


def _length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(head) + 4


def test_closing_one_port_leaves_every_other_listeners_connections_alone(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    closing, staying = free_ports(2)
    runner = make_proxy(listen_policy=policy_for(closing, staying))
    shared = proxy_for("app.example.org", origin.backend())
    runner.route(shared, on_port(origin, closing), on_port(origin, staying))
    conns = [_keepalive(runner.port), _keepalive(staying), _keepalive(closing)]
    runner.route(shared, on_port(origin, staying))
    assert refused(closing)
    # The shared and the staying listener's connections go on; so does the one the
    # closed listener accepted (its proxy is gone: 404, but no reset).
    assert [_ask(c) for c in conns] == [200, 200, 404]
    for c in conns:
        c.close()


def test_metrics_label_a_port_proxy_with_its_port(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    runner.route(on_port(origin, port))
    raw(port, GET)
    labels = runner.on_loop(lambda: {k[1] for k in runner.dp.metrics.requests})
    assert f"app.example.org:{port}/" in labels


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_an_https_port_terminates_tls_and_replaces_forwarded_headers(
    make_proxy: Callable[..., ProxyRunner], origin: Origin, ca: trustme.CA, tmp_path: Path
) -> None:
    leaf = ca.issue_cert("*.example.org")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port), default_certificate=(chain, key))
    runner.route(on_port(origin, port, "https"))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=3), server_hostname="app.example.org"
    ) as tls:
        forged = b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\n"
        tls.sendall(b"GET /s HTTP/1.1\r\n" + H_APP + forged + b"Connection: close\r\n\r\n")
        data = b""
        while part := tls.recv(65536):
            data += part
    assert status_of(data) == 200
    seen = origin.seen[-1]
    assert seen.header("X-Forwarded-Proto") == "https"
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("X-Forwarded-Port") == str(port)
