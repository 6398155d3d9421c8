"""The OpenShift source against a real ActiveMQ 5.17 (Debian's), events published as
the OpenShift broker plugin publishes them, applied into the in-memory routes."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import stomp

from portway.sources.base import DOWN, UP, SourceSet
from portway.sources.openshift_routes import AppKey
from tests.sources.activemq import Broker, _connect
from tests.sources.openshift_memory import MemoryOpenShiftRoutes
from tests.sources.openshift_running import Running, settings_for
from tests.sources.spi_events import Certs, endpoint, removal, ruby_yaml

DLQ = "/queue/ActiveMQ.DLQ"


def app(name: str, namespace: str = "demo") -> dict[str, Any]:
    return {"app_name": name, "namespace": namespace}


def test_the_whole_lifecycle_ends_in_the_expected_routes(
    activemq: Broker, queue: str, start: Callable[..., Running]
) -> None:
    a = app("shop")
    ha = "ha-shop-demo.cloud.example.org"
    certs_plain, certs_locked = Certs("www.shop.example"), Certs("pay.shop.example")
    first = {**endpoint(port=35546), **a}
    second = {**endpoint(port=35547, address="10.4.59.222"), **a}
    adds = [
        {"action": "create_application", **a, "scalable": True, "ha": False},
        first,
        {**first, "action": "add_gear", "deprecated": "use add_public_endpoint"},
        second,
        {**endpoint(port=40000, types=["web_framework"]), **a},  # not a load balancer
        {"action": "add_alias", **a, "alias": "www.shop.example"},
        {"action": "add_alias", **a, "alias": "pay.shop.example"},
        {**certs_plain.add_ssl("www.shop.example"), **a},
        {
            **certs_locked.add_ssl("pay.shop.example", certs_locked.traditional_encrypted),
            **a,
            "pass_phrase": certs_locked.phrase,
        },
    ]
    running = start(settings_for(activemq.url(queue)))
    activemq.publish(queue, map(ruby_yaml, adds))
    running.wait_outcomes(applied=8, ignored=1)
    routes = running.routes
    members = (("10.4.59.221", 35546), ("10.4.59.222", 35547))
    assert routes.table() == {
        (host, prefix): (backend, members)
        for host in (ha, "www.shop.example", "pay.shop.example")
        for prefix, backend in (("/", "/"), ("/health", "/configuration/health"))
    }
    certificates = routes.certificates()
    assert set(certificates) == {"www.shop.example", "pay.shop.example"}
    assert "ENCRYPTED" not in certificates["pay.shop.example"].key_pem
    assert certificates["pay.shop.example"].chain_pem == certs_locked.chain_pem
    assert routes.projects() == {"shop-demo": "demo"}

    removals = [
        {**removal(port=35546), **a},
        {"action": "remove_ssl", **a, "alias": "pay.shop.example"},
        {"action": "remove_alias", **a, "alias": "www.shop.example"},
    ]
    activemq.publish(queue, map(ruby_yaml, removals))
    running.wait_outcomes(applied=11)
    assert routes.table() == {
        (host, prefix): (backend, (("10.4.59.222", 35547),))
        for host in (ha, "pay.shop.example")
        for prefix, backend in (("/", "/"), ("/health", "/configuration/health"))
    }
    assert set(routes.certificates()) == set()  # pay.shop.example is on the wildcard again

    activemq.publish(queue, [ruby_yaml({"action": "delete_application", **a, "ha": False})])
    running.wait_outcomes(applied=12)
    assert routes.apps == {} and routes.table() == {}
    # The change log names each message; the duplicate add_gear changed nothing.
    assert [c[1] for c in routes.changes] == [
        "create_application",
        "add_public_endpoint",
        "add_public_endpoint",
        "add_alias",
        "add_alias",
        "add_ssl",
        "add_ssl",
        "remove_public_endpoint",
        "remove_ssl",
        "remove_alias",
        "delete_application",
    ]
    assert all(c[0].startswith("ID:") for c in routes.changes)
    activemq.wait_depth(queue, 0)  # everything acknowledged
    events = SourceSet([running.source]).gauges()["portway_source_events_total"][1]
    assert sorted((labels["outcome"], n) for labels, n in events) == [
        ("applied", 12.0),
        ("ignored", 1.0),
    ]


def test_malformed_messages_are_acked_logged_counted_and_do_not_block(
    activemq: Broker, queue: str, start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    a = app("blog")
    bodies: list[str | bytes] = [
        ":action: [unclosed\n",
        ruby_yaml({"action": "create_application", **a}),
        ruby_yaml({"action": "resize_application", **a}),
        ruby_yaml({**endpoint(), **a, "public_port": "eighty"}),
        b"\xff\xfe binary",
        ruby_yaml({**endpoint(), **a}),
    ]
    caplog.set_level(logging.INFO, logger="portway.sources.openshift")
    running = start(settings_for(activemq.url(queue)))
    activemq.publish(queue, bodies)
    running.wait_outcomes(malformed=4, applied=2)
    assert running.routes.table()[("ha-blog-demo.cloud.example.org", "/")][1] == (
        ("10.4.59.221", 35546),
    )
    dropped = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(dropped) == 4
    assert all(line.startswith("message ID:") for line in dropped)
    assert any("unknown action 'resize_application'" in line for line in dropped)
    assert any("(public_port)" in line for line in dropped)
    activemq.wait_depth(queue, 0)


def test_refused_events_are_acked_and_the_rest_applies(
    activemq: Broker, queue: str, start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    """A key the pass phrase does not open, an alias another application holds: each is
    refused with a clear line, acknowledged, and does not stop what follows."""
    certs = Certs("secure.example.com")
    bodies = [
        ruby_yaml({"action": "add_alias", **app("one"), "alias": "taken.example.com"}),
        ruby_yaml({"action": "add_alias", **app("two"), "alias": "taken.example.com"}),
        ruby_yaml(
            {
                **certs.add_ssl("secure.example.com", certs.pkcs8_encrypted),
                **app("one"),
                "pass_phrase": "not the phrase",
            }
        ),
        ruby_yaml({"action": "add_alias", **app("two"), "alias": "free.example.com"}),
    ]
    caplog.set_level(logging.WARNING, logger="portway.sources.openshift")
    running = start(settings_for(activemq.url(queue)))
    activemq.publish(queue, bodies)
    running.wait_outcomes(applied=2, refused=2)
    apps = running.routes.apps
    assert apps[AppKey("demo", "one")].aliases == ("taken.example.com",)
    assert apps[AppKey("demo", "two")].aliases == ("free.example.com",)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("belongs to one-demo" in line for line in lines)
    assert any("(add_ssl) refused: private_key of secure.example.com" in line for line in lines)
    activemq.wait_depth(queue, 0)


def test_a_store_failure_is_redelivered_never_dead_lettered(
    activemq: Broker, queue: str, start: Callable[..., Running]
) -> None:
    """More failures than ActiveMQ's default six redeliveries: the source never NACKs,
    so the broker keeps redelivering and the event lands once the store is back."""
    routes = MemoryOpenShiftRoutes()
    routes.fail_next = 8
    name = f"retry{uuid.uuid4().hex[:6]}"
    bodies = [
        ruby_yaml({"action": "create_application", **app(name)}),
        ruby_yaml({**endpoint(), **app(name)}),
    ]
    running = start(settings_for(activemq.url(queue)), routes)
    activemq.publish(queue, bodies)
    running.wait_outcomes(applied=2, timeout=90)
    assert running.source.outcomes["retried"] == 8
    first_id = routes.calls[0][0]
    assert [c[0] for c in routes.calls[:9]] == [first_id] * 9  # the same message, again
    assert [e.__class__.__name__ for e in routes.events] == [
        "CreateApplication",
        "AddPublicEndpoint",
    ]  # in order, each once
    activemq.wait_depth(queue, 0)
    assert not [b for b in activemq.browse(DLQ) if name.encode() in b]


def test_a_nack_would_have_lost_the_event_to_the_dlq(activemq: Broker, queue: str) -> None:
    """Why the source never NACKs: ActiveMQ 5.17's default policy dead-letters at once.
    (It also shows that the DLQ check above can see a dead-lettered event.)"""
    name = f"nack{uuid.uuid4().hex[:6]}"
    activemq.publish(queue, [ruby_yaml({"action": "create_application", **app(name)})])
    got = threading.Event()
    frames: list[Any] = []

    class Listener(stomp.ConnectionListener):  # type: ignore[misc]
        def on_message(self, frame: Any) -> None:
            frames.append(frame)
            got.set()

    conn = _connect(activemq.port, Listener())
    try:
        conn.subscribe(queue, id="n", ack="client-individual")
        assert got.wait(30)
        conn.nack(frames[0].headers["ack"])
        deadline = time.monotonic() + 30
        while not [b for b in activemq.browse(DLQ) if name.encode() in b]:
            assert time.monotonic() < deadline, "the NACKed message never reached the DLQ"
            time.sleep(0.2)
    finally:
        conn.disconnect()
    activemq.wait_depth(queue, 0)


def test_a_topic_is_subscribed_durably(activemq: Broker, start: Callable[..., Running]) -> None:
    """Events published while the node is away wait in its durable subscription."""
    topic = f"/topic/routinginfo-{uuid.uuid4().hex[:8]}"
    settings = settings_for(activemq.url(topic))
    first = start(settings)
    first.wait_state(UP)
    first.stop()
    name = f"durable{uuid.uuid4().hex[:6]}"
    activemq.publish(
        topic,
        [
            ruby_yaml({"action": "create_application", **app(name)}),
            ruby_yaml({**endpoint(port=8080), **app(name)}),
        ],
    )
    assert first.routes.events == []
    second = start(settings)
    second.wait_outcomes(applied=2)
    assert second.routes.table()[(f"ha-{name}-demo.cloud.example.org", "/")][1] == (
        ("10.4.59.221", 8080),
    )


def test_a_frozen_broker_is_noticed_by_heart_beats(
    activemq: Broker, queue: str, start: Callable[..., Running]
) -> None:
    running = start(settings_for(activemq.url(queue)))
    running.wait_state(UP)
    activemq.pause()
    try:
        began = time.monotonic()
        running.wait_state(DOWN, timeout=30)
        noticed = time.monotonic() - began
    finally:
        activemq.resume()
    assert noticed < 10  # two heart-beat periods of silence, plus scheduling under load
    running.wait_state(UP, timeout=60)
    activemq.publish(queue, [ruby_yaml({"action": "create_application", **app("cold")})])
    running.wait_outcomes(applied=1)


def test_wrong_credentials_keep_the_source_down_and_retrying(
    activemq: Broker, queue: str, start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="portway.sources.openshift")
    running = start(settings_for(activemq.url(queue, password="wrong")))
    deadline = time.monotonic() + 30
    while sum("STOMP stomp://" in r.getMessage() for r in caplog.records) < 2:
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.1)
    assert running.source.state != UP
    assert not running.task.done()  # still trying, as long as the node runs
    assert "routing-s3cret" not in " ".join(r.getMessage() for r in caplog.records)
    assert "wrong" not in " ".join(r.getMessage() for r in caplog.records)


def test_queue_consumers_are_exclusive(
    activemq: Broker, queue: str, start: Callable[..., Running]
) -> None:
    """Two nodes on one queue (one shared store): one applies everything, in order; the
    other takes over when the first goes."""
    first = start(settings_for(activemq.url(queue)))
    first.wait_state(UP)
    second = start(settings_for(activemq.url(queue)))
    second.wait_state(UP)
    bodies = [ruby_yaml({"action": "create_application", **app(f"x{i}")}) for i in range(20)]
    activemq.publish(queue, bodies)
    first.wait_outcomes(applied=20)
    assert second.routes.events == []
    first.stop()
    activemq.publish(queue, bodies[:5])
    second.wait_outcomes(applied=5)


def test_stomp_errors_are_logged_as_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A send on a closed socket (a broker restart) is logged by stomp.py with a
    traceback, then raised and reported by the source: the traceback goes."""
    import stomp.log as stomp_log

    import portway.sources.openshift  # noqa: F401 - installs the filter

    with caplog.at_level(logging.ERROR, logger="stomp.py"):
        try:
            raise OSError(9, "Bad file descriptor")
        except OSError:
            stomp_log.error("error sending frame", exc_info=True)
    (record,) = [r for r in caplog.records if r.name == "stomp.py"]
    assert record.getMessage() == "error sending frame"
    assert not record.exc_info
