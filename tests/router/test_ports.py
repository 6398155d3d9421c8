"""Route tables per port (issue 13): a proxy on a port of its own answers there only."""

from __future__ import annotations

from portway.model import Proxy
from portway.router import RouteTable


def _proxy(pid: str, host: str, port: int | None = None, protocol: str = "http") -> Proxy:
    return Proxy(id=pid, project="alpha", hostname=host, listen_port=port, protocol=protocol)


SHARED = _proxy("a", "ec2.example.org")
HTTP = _proxy("b", "ec2.example.org", 8773)
HTTPS = _proxy("c", "ec2.example.org", 8772, "https")


def test_a_port_proxy_answers_on_its_port_only() -> None:
    table = RouteTable.build([SHARED, HTTP, HTTPS])
    assert table.match("ec2.example.org", "/") is not None
    assert table.match("ec2.example.org", "/").proxy.id == "a"  # type: ignore[union-attr]
    on_http, on_https = table.on_port(8773), table.on_port(8772)
    assert on_http is not None and on_https is not None
    assert on_http.match("ec2.example.org", "/x").proxy.id == "b"  # type: ignore[union-attr]
    assert on_https.match("ec2.example.org", "/x").proxy.id == "c"  # type: ignore[union-attr]
    assert table.on_port(9000) is None
    assert table.listeners() == {8773: "http", 8772: "https"}


def test_only_a_port_proxy_leaves_the_shared_listeners_empty() -> None:
    table = RouteTable.build([HTTP])
    assert table.match("ec2.example.org", "/") is None
    assert len(table) == 1 and table.get("b") is not None
    assert {r.proxy.id for r in table.routes()} == {"b"}


def test_the_last_proxy_gone_closes_the_port_and_others_are_shared() -> None:
    table = RouteTable.build([SHARED, HTTP, HTTPS])
    after = table.with_changes(removed=["b"])
    assert after.listeners() == {8772: "https"}
    assert after.on_port(8772) is table.on_port(8772)  # untouched ports are the same object
    assert after.get("b") is None and len(after) == 2


def test_moving_a_proxy_between_ports_and_onto_the_shared_listeners() -> None:
    table = RouteTable.build([HTTP])
    moved = table.with_changes(upserts=[_proxy("b", "ec2.example.org", 8774)])
    assert moved.listeners() == {8774: "http"}
    shared = moved.with_changes(upserts=[_proxy("b", "ec2.example.org")])
    assert shared.listeners() == {}
    assert shared.match("ec2.example.org", "/").proxy.id == "b"  # type: ignore[union-attr]
    back = shared.with_changes(upserts=[HTTP])
    assert back.match("ec2.example.org", "/") is None and back.listeners() == {8773: "http"}


def test_a_port_only_hostname_still_has_its_owner_for_certificates() -> None:
    table = RouteTable.build([HTTPS])
    answering = table.answering("ec2.example.org")
    assert answering is not None and answering.owner == "alpha"


def test_the_ports_protocol_is_that_of_its_smallest_proxy_id() -> None:
    table = RouteTable.build(
        [_proxy("z", "a.example.org", 8000, "tcp"), _proxy("m", "b.example.org", 8000)]
    )
    assert table.listeners() == {8000: "http"}
