"""The sources obey the same quotas as the API, and log what a quota refused: Toolforge
(8282 registrations, and resyncs as the Kubernetes watcher makes them) and OpenShift
routing events, through their service-backed adapters over a real store."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import pytest

from portway.errors import ForbiddenError, QuotaExceededError
from portway.model import CacheSettings
from portway.model.backend_policy import BackendPolicy
from portway.model.quota import Quota
from portway.protocol.routing_spi import MalformedEvent, RoutingEvent, parse_event
from portway.service import Actor, Service
from portway.service.quota_check import check_tool_proxy
from portway.sources.openshift_routes import OpenShiftPolicy
from portway.sources.openshift_service import ServiceOpenShiftRoutes
from portway.sources.tool_service import ServiceToolRoutes
from portway.store import Store, open_store
from portway.store.keyring import Keyring
from tests.sources.spi_events import APP, endpoint, ruby_yaml
from tests.sources.test_tool_service import route

ADMIN = Actor.system("test")
POLICY = BackendPolicy.build(allow=["127.0.0.0/8", "10.0.0.0/8"], listeners=[])


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url, Keyring.generate())
    yield opened
    opened.close()


def tools(store: Store, quota: Quota, source: str = "toolforge") -> ServiceToolRoutes:
    service = Service(store, backend_policy=POLICY, quota_defaults=quota)
    return ServiceToolRoutes(service, source=source, canonical_domain="toolforge.org")


def test_a_registration_over_the_backends_quota_is_refused(store: Store) -> None:
    routes = tools(store, Quota(backends_per_proxy=1))
    routes.register(route("alpha", "/.*", "http://10.0.0.1:8000"))
    with pytest.raises(QuotaExceededError) as refused:
        routes.register(route("alpha", "/api/.*", "http://10.0.0.2:8000"))
    assert (refused.value.quota, refused.value.limit, refused.value.in_use) == (
        "backends_per_proxy",
        1,
        1,
    )
    # What the 8282 listener logs and answers for it: a ForbiddenError is a PortwayError.
    assert isinstance(refused.value, ForbiddenError)


def test_a_resync_skips_and_logs_the_tool_over_quota_and_applies_the_others(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    routes = tools(store, Quota(backends_per_proxy=1), source="kubernetes")
    wanted = [
        route("alpha", "/.*", "http://10.0.0.1:8000"),
        route("beta", "/.*", "http://10.0.0.2:8000"),
        route("beta", "/api/.*", "http://10.0.0.3:8000"),
    ]
    with caplog.at_level(logging.WARNING, logger="portway.sources.tools"):
        routes.resync(wanted)
    service = routes._service
    assert [p.hostname for p in service.list_proxies(ADMIN, "alpha")] == ["alpha.toolforge.org"]
    assert service.store.read(lambda r: r.get_project("beta")) is None  # nothing written
    assert any(
        "tool beta refused" in r.message and "quota backends_per_proxy" in r.message
        for r in caplog.records
    ), [r.message for r in caplog.records]


def test_a_new_tool_over_the_proxies_quota_is_refused(store: Store) -> None:
    routes = tools(store, Quota(proxies=0))
    with pytest.raises(QuotaExceededError) as refused:
        routes.register(route("alpha", "/.*", "http://10.0.0.1:8000"))
    assert refused.value.quota == "proxies"


def _event(port: int) -> RoutingEvent:
    event = parse_event(ruby_yaml(endpoint(port, "10.0.0.1")))
    assert not isinstance(event, MalformedEvent), event
    return event


def test_an_openshift_event_over_quota_is_refused_and_writes_nothing(store: Store) -> None:
    service = Service(store, backend_policy=POLICY, quota_defaults=Quota(backends_per_proxy=1))
    routes = ServiceOpenShiftRoutes(service, OpenShiftPolicy(domain="cloud.example.org"))
    create = parse_event(ruby_yaml({"action": "create_application", **APP, "scalable": True}))
    assert not isinstance(create, MalformedEvent)
    routes.apply(create, "m1")
    routes.apply(_event(1001), "m2")
    before = store.read(lambda r: r.load_proxies())
    with pytest.raises(QuotaExceededError) as refused:  # the consumer logs it, acks it
        routes.apply(_event(1002), "m3")
    assert refused.value.quota == "backends_per_proxy"
    assert store.read(lambda r: r.load_proxies()) == before


def test_a_source_is_not_refused_by_a_cache_quota_it_does_not_grow(store: Store) -> None:
    # No source asks for a cache (a tool's proxy reserves nothing): a quota of 0 bytes,
    # or one lowered under what an admin gave the tool, never stops its registrations.
    routes = tools(store, Quota(cache_bytes=0))
    routes.register(route("alpha", "/.*", "http://10.0.0.1:8000"))
    service = routes._service
    quota = service.get_quota(ADMIN, "alpha")
    assert quota[1].cache_bytes == 0 and quota[2]["cache_bytes"] == 0
    routes.register(route("alpha", "/api/.*", "http://10.0.0.2:8000"))


def test_the_tool_precheck_refuses_cache_growth_with_the_quota_message(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # The check a source's write runs before writing (so a resync skips just that
    # tool) counts cache_bytes as the store does: a tool proxy that would take the
    # cache from nothing to max_bytes is refused naming the quota, limit and use.
    routes = tools(store, Quota(cache_bytes=1 << 20))
    routes.register(route("alpha", "/.*", "http://10.0.0.1:8000"))
    before = store.read(lambda r: r.find_proxies(project="alpha"))[0]
    after = dataclasses.replace(before, cache=CacheSettings(enabled=True, max_bytes=2 << 20))
    with (
        caplog.at_level(logging.INFO, logger="portway.service.quota_check"),
        pytest.raises(QuotaExceededError) as refused,
    ):
        store.read(lambda r: check_tool_proxy(r, Quota(cache_bytes=1 << 20), before, after))
    assert (refused.value.quota, refused.value.limit, refused.value.in_use) == (
        "cache_bytes",
        1 << 20,
        0,
    )
    assert "quota cache_bytes (1048576) refused" in caplog.text
