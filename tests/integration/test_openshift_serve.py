"""OpenShift routing events through ``portway serve`` (issue 14): a real ActiveMQ, a real
node, real backends; traffic through the data plane after every step of an
application's life, and a long stream of events across SIGKILLs of the node."""

from __future__ import annotations

import re
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portway.store import open_store
from tests.integration.harness import Backend, Portway
from tests.sources.activemq import Broker
from tests.sources.conftest import activemq, queue  # noqa: F401  (the broker fixtures)
from tests.sources.spi_events import APP, Certs, endpoint, removal, ruby_yaml
from tests.sources.spi_stream import Model, stream

DOMAIN = "portway.test"  # the node's default certificate is *.portway.test: the wildcard
HA = f"ha-myapp-demo.{DOMAIN}"
ALIAS = "www.myapp.example.com"
WILDCARD = {f"*.{DOMAIN}", DOMAIN}


class OpenShiftNode(Portway):
    def __init__(self, data_dir: Path, url: str) -> None:
        super().__init__(
            data_dir,
            extra=[
                "--openshift-stomp", url,
                "--openshift-domain", DOMAIN,
                "--backend-allow", "10.0.0.0/8",
            ],
        )  # fmt: skip

    def handled(self) -> int:
        """Events the source handled so far, whatever the outcome (from /metrics)."""
        text = httpx.get(f"{self.metrics_url}/metrics", timeout=5).text
        pattern = r'^portway_source_events_total\{source="openshift",outcome="[a-z]+"\} (\S+)$'
        return int(sum(float(v) for v in re.findall(pattern, text, re.MULTILINE)))

    def tls(self, sni: str, ctx: ssl.SSLContext) -> tuple[set[str], bytes]:
        """The served certificate's DNS names and the answer to GET / for ``sni``."""
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname=sni) as conn:
            cert = conn.getpeercert()
            assert cert is not None
            names = {v for k, v in cert["subjectAltName"] if k == "DNS"}
            conn.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while part := conn.recv(65536):
                data += part
        return names, data


def eventually(check: Callable[[], None], timeout: float = 10) -> None:
    """``check`` passes within ``timeout`` (a committed event reaches the data plane
    within milliseconds, but the reconciler publishes after the acknowledgement)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except (AssertionError, httpx.HTTPError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def node(
    tmp_path: Path,
    activemq: Broker,  # noqa: F811
    queue: str,  # noqa: F811
) -> Iterator[OpenShiftNode]:
    pw = OpenShiftNode(tmp_path / "data", activemq.url(queue))
    pw.start()
    yield pw
    pw.stop()


def _expect(found: object, wanted: object) -> None:
    assert found == wanted


def _names_of(pw: OpenShiftNode, host: str, path: str = "/", tries: int = 6) -> set[str]:
    names = set()
    for _ in range(tries):
        response = pw.get(host, path)
        assert response.status_code == 200, (host, path, response.status_code)
        names.add(response.json()["backend"])
    return names


def test_an_application_lifecycle_is_routed_after_every_event(
    node: OpenShiftNode,
    activemq: Broker,  # noqa: F811
    queue: str,  # noqa: F811
    backends: list[Backend],
) -> None:
    b0, b1 = backends[0], backends[1]
    handled = 0

    def send(fields: dict[str, Any]) -> None:
        nonlocal handled
        activemq.publish(queue, [ruby_yaml(fields)])
        handled += 1
        until(lambda: node.handled() >= handled, f"{fields['action']} to be handled")

    health = until(lambda: httpx.get(f"{node.api_url}/healthz", timeout=5).json(), "healthz")
    until(
        lambda: (
            httpx.get(f"{node.api_url}/healthz", timeout=5).json()["sources"]["openshift"] == "up"
        ),
        f"the source to be up: {health}",
    )
    send({"action": "create_application", **APP, "scalable": True, "ha": True})
    assert node.get(HA).status_code == 404  # an application without endpoints
    send(endpoint(b0.port, "127.0.0.1"))
    send(endpoint(b1.port, "127.0.0.1"))
    eventually(lambda: _expect(_names_of(node, HA), {"b0", "b1"}))
    response = node.get(HA, "/health/deep?x=1")
    assert response.json()["path"] == "/configuration/health/deep?x=1"  # the mapping
    assert node.get(HA, "/healthz").json()["path"] == "/healthz"  # not under /health

    send({"action": "add_alias", **APP, "alias": ALIAS})
    eventually(lambda: _expect(_names_of(node, ALIAS), {"b0", "b1"}))
    certs = Certs(ALIAS)
    ctx = ssl.create_default_context(cafile=str(node.data_dir / "ca.pem"))
    certs.ca.configure_trust(ctx)
    ctx.check_hostname = False  # the wildcard does not name the alias: compare names
    assert node.tls(ALIAS, ctx)[0] == WILDCARD
    send(certs.add_ssl(ALIAS, certs.traditional_encrypted, pass_phrase=certs.phrase))
    eventually(lambda: _expect(node.tls(ALIAS, ctx)[0], {ALIAS}))
    assert node.tls(ALIAS, ctx)[1].startswith(b"HTTP/1.1 200 ")
    assert node.tls(HA, ctx)[0] == WILDCARD  # the application's own name keeps the wildcard

    send(removal(b0.port, "127.0.0.1"))
    eventually(lambda: _expect(_names_of(node, HA), {"b1"}))
    assert _names_of(node, ALIAS, "/health") == {"b1"}
    send({"action": "remove_ssl", **APP, "alias": ALIAS})
    eventually(lambda: _expect(node.tls(ALIAS, ctx)[0], WILDCARD))
    assert node.tls(ALIAS, ctx)[1].startswith(b"HTTP/1.1 200 ")
    send({"action": "remove_alias", **APP, "alias": ALIAS})
    eventually(lambda: _expect(node.get(ALIAS).status_code, 404))
    assert _names_of(node, HA) == {"b1"}
    send({"action": "delete_application", **APP})
    eventually(lambda: _expect(node.get(HA).status_code, 404))

    metrics = httpx.get(f"{node.metrics_url}/metrics", timeout=5).text
    assert 'portway_source_up{source="openshift"} 1' in metrics
    events = dict(
        re.findall(
            r'^portway_source_events_total\{source="openshift",outcome="(\w+)"\} (\S+)$',
            metrics,
            re.M,
        )
    )
    assert events == {"applied": "9"}
    node.stop()
    assert "PRIVATE KEY" not in node.output  # no key in the node's log


def _stored(data_dir: Path) -> dict[tuple[str, str], set[tuple[str, int]]]:
    """(hostname, prefix) → members, as the node's store holds them."""
    store = open_store(f"sqlite:///{(data_dir / 'portway.db').resolve()}")
    try:
        proxies = store.read(lambda r: r.load_proxies())
    finally:
        store.close()
    return {(p.hostname, p.path_prefix): {(b.address, b.port) for b in p.backends} for p in proxies}


def _expected(model: Model) -> dict[tuple[str, str], set[tuple[str, int]]]:
    """The same, from the stream's own account of what its events mean."""
    found = {}
    for (app_name, namespace), members in model.endpoints.items():
        if not members:
            continue  # an application without endpoints has no proxy
        for host in {f"ha-{app_name}-{namespace}.{DOMAIN}", *model.aliases[(app_name, namespace)]}:
            found[(host, "/")] = set(members)
    return found


EVENTS = 1000


@pytest.mark.timeout(600)  # 1 000 events at ~30/s on a loaded machine, plus 3 restarts
def test_events_published_across_sigkills_of_the_node_are_all_applied(
    node: OpenShiftNode,
    activemq: Broker,  # noqa: F811
    queue: str,  # noqa: F811
) -> None:
    bodies, model, _ = stream(EVENTS, seed=1414, apps=8)
    chunk = EVENTS // 4
    for start in range(0, EVENTS, chunk):
        activemq.publish(queue, bodies[start : start + chunk])
        if start + chunk < EVENTS:  # the node dies in the middle of applying them
            until(lambda: node.handled() > 0, "the node to handle something")
            node.stop(signal.SIGKILL)
            node.start()
    until(lambda: activemq.depth(queue) == 0, "the queue to drain", timeout=300)
    node.stop()
    assert "Traceback" not in node.output
    assert _stored(node.data_dir) == _expected(model)


@pytest.mark.timeout(600)  # 1 000 events at ~30/s on a loaded machine, plus a broker restart
def test_events_published_across_a_broker_restart_are_all_applied(
    node: OpenShiftNode,
    activemq: Broker,  # noqa: F811
    queue: str,  # noqa: F811
) -> None:
    bodies, model, _ = stream(EVENTS, seed=2727, apps=8)
    half = EVENTS // 2
    activemq.publish(queue, bodies[:half])
    until(lambda: node.handled() > 0, "the node to handle something")
    activemq.stop()  # mid-stream: the unacknowledged rest must survive in the broker
    activemq.start()
    activemq.publish(queue, bodies[half:])
    until(lambda: activemq.depth(queue) == 0, "the queue to drain", timeout=300)
    node.stop()
    assert "Traceback" not in node.output
    assert _stored(node.data_dir) == _expected(model)
