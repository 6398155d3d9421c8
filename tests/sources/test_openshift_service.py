"""The service-backed OpenShiftRoutes over a real store (SQLite and PostgreSQL): each
event one transaction, the proxies equal ``routes(app)``, only its own proxies touched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from portway.errors import ConflictError, RefusedAddressError, ValidationError
from portway.model import Proxy
from portway.model.backend_policy import BackendPolicy
from portway.protocol.routing_spi import MalformedEvent, RoutingEvent, parse_event
from portway.service import Actor, BackendSpec, Service
from portway.sources.openshift_routes import AppKey, OpenShiftPolicy, apply_event
from portway.sources.openshift_routes import routes as app_routes
from portway.sources.openshift_service import ServiceOpenShiftRoutes
from portway.store import open_store
from portway.store.keyring import Keyring
from tests.sources.spi_events import APP, Certs, endpoint, removal, ruby_yaml
from tests.sources.spi_stream import stream

ADMIN = Actor.system("test")
DOMAIN = "cloud.example.org"
HA = f"ha-myapp-demo.{DOMAIN}"
ALIAS = "www.myapp.example.com"
POLICY = BackendPolicy.build(allow=["127.0.0.0/8", "10.0.0.0/8"], listeners=[])
OS_POLICY = OpenShiftPolicy(domain=DOMAIN)

Table = dict[tuple[str, str], tuple[str | None, tuple[tuple[str, int], ...], str | None]]


@pytest.fixture
def service(store_url: str) -> Iterator[Service]:
    store = open_store(store_url, Keyring.generate())
    yield Service(store, backend_policy=POLICY)
    store.close()


@pytest.fixture
def routes(service: Service) -> ServiceOpenShiftRoutes:
    return ServiceOpenShiftRoutes(service, OS_POLICY)


def ev(fields: dict[str, Any]) -> RoutingEvent:
    event = parse_event(ruby_yaml(fields))
    assert not isinstance(event, MalformedEvent), event
    return event


def proxies(service: Service) -> list[Proxy]:
    return service.store.read(lambda r: r.load_proxies())


def table(service: Service) -> Table:
    """(hostname, prefix) → (backend prefix, members, certificate id) of every proxy."""
    return {
        (p.hostname, p.path_prefix): (
            p.rewrite.backend_prefix,
            tuple(sorted((b.address, b.port) for b in p.backends)),
            p.tls.certificate,
        )
        for p in proxies(service)
    }


def create() -> dict[str, Any]:
    return {"action": "create_application", **APP, "scalable": True, "ha": True}


def alias(action: str, name: str = ALIAS) -> dict[str, Any]:
    return {"action": action, **APP, "alias": name}


def test_endpoints_become_one_proxy_per_hostname_and_prefix_in_the_namespace_project(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    routes.apply(ev(create()), "m1")
    assert proxies(service) == []  # no endpoint yet: nothing routed
    assert service.store.read(lambda r: r.get_project("demo")) is not None
    routes.apply(ev(endpoint(1001, "10.0.0.1")), "m2")
    routes.apply(ev(endpoint(1002, "10.0.0.2")), "m3")
    routes.apply(ev(alias("add_alias")), "m4")
    both = (("10.0.0.1", 1001), ("10.0.0.2", 1002))
    assert table(service) == {
        (HA, "/"): (None, both, None),
        (HA, "/health"): ("/configuration/health", both, None),
        (ALIAS, "/"): (None, both, None),
        (ALIAS, "/health"): ("/configuration/health", both, None),
    }
    for proxy in proxies(service):
        assert proxy.project == "demo"
        assert proxy.source == "openshift"
        assert {b.source for b in proxy.backends} == {"openshift"}
    routes.apply(ev(removal(1001, "10.0.0.1")), "m5")
    routes.apply(ev(alias("remove_alias")), "m6")
    one = (("10.0.0.2", 1002),)
    assert table(service) == {
        (HA, "/"): (None, one, None),
        (HA, "/health"): ("/configuration/health", one, None),
    }
    routes.apply(ev({"action": "delete_application", **APP}), "m7")
    assert table(service) == {}


def test_each_event_is_one_change_by_openshift_naming_the_message_and_every_proxy(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    start = service.store.current_revision()
    routes.apply(ev(endpoint(1001, "10.0.0.1")), "ID:broker-1:1:1:1")
    routes.apply(ev(alias("add_alias")), "ID:broker-1:1:1:2")
    assert service.store.current_revision() == start + 2
    changes = service.store.read(lambda r: r.list_changes(project=None, since=start))
    assert [(c.actor, c.kind, c.action) for c in changes] == [
        ("openshift", "openshift", "add_alias"),
        ("openshift", "openshift", "add_public_endpoint"),
    ]
    assert changes[0].after["message_id"] == "ID:broker-1:1:1:2"
    # The alias's two proxies came in one write: the change feed names both.
    _, changed = service.store.changed_proxy_ids(start + 1)
    assert changed == {p.id for p in proxies(service) if p.hostname == ALIAS}


def test_redelivered_events_change_nothing_and_write_nothing(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    certs = Certs(ALIAS)
    history = [
        create(),
        endpoint(1001, "10.0.0.1"),
        alias("add_alias"),
        certs.add_ssl(ALIAS),
        removal(1001, "10.0.0.1"),
        alias("remove_ssl"),
        alias("remove_alias"),
        {"action": "delete_application", **APP},
    ]
    for number, fields in enumerate(history):
        routes.apply(ev(fields), f"m{number}")
        seen = (table(service), service.store.current_revision())
        routes.apply(ev(fields), f"m{number}-again")
        assert (table(service), service.store.current_revision()) == seen, fields["action"]


def test_add_ssl_attaches_the_alias_certificate_and_remove_ssl_deletes_it(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    certs = Certs(ALIAS)
    routes.apply(ev(endpoint(1001, "10.0.0.1")), "m1")
    routes.apply(ev(certs.add_ssl(ALIAS, certs.pkcs8_encrypted, pass_phrase=certs.phrase)), "m2")
    [cert] = service.list_certificates(ADMIN, "demo")
    assert cert.name == f"openshift {ALIAS}"
    assert cert.names == (ALIAS,)
    assert {k: v[2] for k, v in table(service).items()} == {
        (HA, "/"): None,
        (HA, "/health"): None,
        (ALIAS, "/"): cert.id,
        (ALIAS, "/health"): cert.id,
    }
    changes = service.store.read(lambda r: r.list_changes(project="demo", limit=1))
    assert "PRIVATE KEY" not in repr(changes)  # the key never reaches the change log
    routes.apply(ev(alias("remove_ssl")), "m3")
    assert service.list_certificates(ADMIN, "demo") == []
    assert {v[2] for v in table(service).values()} == {None}
    assert (ALIAS, "/") in table(service)  # the alias stays routed, by the wildcard


def test_a_certificate_for_another_name_is_refused(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    other = Certs("other.example.com")
    routes.apply(ev(endpoint(1001, "10.0.0.1")), "m1")
    with pytest.raises(ValidationError, match=r"covers other\.example\.com"):
        routes.apply(ev(other.add_ssl(ALIAS)), "m2")
    assert service.list_certificates(ADMIN, "demo") == []


def test_an_api_proxy_on_the_alias_is_never_touched_and_refuses_the_alias(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    service.create_project(ADMIN, "demo")
    mine = service.create_proxy(
        ADMIN,
        "demo",
        Proxy(id="", project="demo", hostname=ALIAS),
        [BackendSpec(address="10.9.9.9", port=80)],
    )
    routes.apply(ev(endpoint(1001, "10.0.0.1")), "m1")
    revision = service.store.current_revision()
    with pytest.raises(ConflictError, match=ALIAS):
        routes.apply(ev(alias("add_alias")), "m2")
    assert service.store.current_revision() == revision
    routes.apply(ev({"action": "delete_application", **APP}), "m3")
    assert [(p.id, p.hostname, p.source) for p in proxies(service)] == [(mine.id, ALIAS, "test")]


def test_an_alias_of_another_application_is_refused_even_without_endpoints(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    other = {"app_name": "other", "namespace": "elsewhere"}
    routes.apply(ev({"action": "add_alias", **other, "alias": ALIAS}), "m1")  # no endpoints
    with pytest.raises(ConflictError, match="other"):
        routes.apply(ev(alias("add_alias")), "m2")
    routes.apply(ev({"action": "remove_alias", **other, "alias": ALIAS}), "m3")
    routes.apply(ev(alias("add_alias")), "m4")  # free again


def test_members_pass_the_backend_policy(service: Service, routes: ServiceOpenShiftRoutes) -> None:
    with pytest.raises(RefusedAddressError):
        routes.apply(ev(endpoint(80, "169.254.169.254")), "m1")
    assert proxies(service) == []


def test_a_long_stream_ends_with_the_routes_the_model_describes(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    bodies, _, _ = stream(300, seed=14, apps=5)
    apps: dict[AppKey, Any] = {}
    for number, body in enumerate(bodies):
        event = parse_event(body)
        if isinstance(event, MalformedEvent):
            continue
        routes.apply(event, f"m{number}")
        key = AppKey.of(event)
        apps[key] = apply_event(apps.get(key), event, OS_POLICY)
    expected = {
        (r.hostname, r.frontend): (None, r.members, None)
        for app in apps.values()
        if app is not None
        for r in app_routes(app)
    }
    assert table(service) == expected


def test_a_backend_the_tenant_added_to_an_application_proxy_is_kept(
    service: Service, routes: ServiceOpenShiftRoutes
) -> None:
    routes.apply(ev(endpoint(1001, "10.0.0.1")), "m1")
    [root] = [p for p in proxies(service) if p.path_prefix == "/" and p.hostname == HA]
    service.add_backend(ADMIN, "demo", root.id, BackendSpec(address="10.7.7.7", port=80))
    routes.apply(ev(endpoint(1002, "10.0.0.2")), "m2")
    routes.apply(ev(removal(1001, "10.0.0.1")), "m3")
    backends = {(b.address, b.port, b.source) for b in service.store.read(
        lambda r: r.get_proxy(root.id)
    ).backends}  # fmt: skip
    assert backends == {("10.7.7.7", 80, "test"), ("10.0.0.2", 1002, "openshift")}
