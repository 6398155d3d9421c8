"""The pure part of the OpenShift source: how each routing event changes an
application's routes, the endpoint filter, and certificate decryption."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from portway.errors import ValidationError
from portway.protocol.routing_spi import AddSsl, RoutingEvent, parse_event
from portway.sources.openshift_routes import (
    AppKey,
    AppRoutes,
    Member,
    OpenShiftPolicy,
    Route,
    apply_event,
    ignored_reason,
    routes,
    tls_material,
)
from tests.sources.spi_events import APP, Certs, endpoint, removal, ruby_yaml

POLICY = OpenShiftPolicy(domain="cloud.example.org")
KEY = AppKey("demo", "myapp")
HA = "ha-myapp-demo.cloud.example.org"


def event(fields: dict[str, Any]) -> RoutingEvent:
    parsed = parse_event(ruby_yaml(fields))
    assert not hasattr(parsed, "reason"), parsed
    return parsed  # type: ignore[return-value]


def fold(*messages: dict[str, Any], state: AppRoutes | None = None) -> AppRoutes | None:
    for fields in messages:
        state = apply_event(state, event(fields), POLICY)
    return state


def alias(action: str, name: str) -> dict[str, Any]:
    return {"action": action, **APP, "alias": name}


CREATE = {"action": "create_application", **APP, "scalable": True, "ha": False}
DELETE = {"action": "delete_application", **APP, "scalable": True, "ha": False}
ROOT_AND_HEALTH = [
    {"frontend": "", "backend": ""},
    {"frontend": "/health", "backend": "/configuration/health"},
]


def test_pool_project_and_ha_alias_are_named_for_the_application() -> None:
    app = fold(CREATE)
    assert app == AppRoutes(key=KEY, ha_hostname=HA)
    assert (KEY.pool, KEY.project) == ("myapp-demo", "demo")
    assert routes(app) == ()  # no endpoint yet: nothing to route to


def test_endpoints_are_routed_per_mapping_on_every_hostname() -> None:
    app = fold(
        CREATE,
        endpoint(port=35546),
        endpoint(port=35547, address="10.4.59.222"),
        alias("add_alias", "foo.example.com"),
    )
    assert app is not None
    members = (("10.4.59.221", 35546), ("10.4.59.222", 35547))
    assert routes(app) == tuple(
        sorted(
            Route(hostname=h, frontend=f, backend=b, members=members)
            for h in (HA, "foo.example.com")
            for f, b in (("/", "/"), ("/health", "/configuration/health"))
        )
    )


def test_the_pool_is_created_lazily_by_any_event_naming_the_app() -> None:
    assert fold(endpoint()) is not None
    assert fold(alias("add_alias", "foo.example.com")) is not None


def test_removing_what_is_not_there_changes_nothing() -> None:
    assert fold(removal()) is None
    assert fold(alias("remove_alias", "foo.example.com")) is None
    assert fold(alias("remove_ssl", "foo.example.com")) is None
    app = fold(CREATE, endpoint())
    assert fold(removal(port=1), alias("remove_alias", "x.example.com"), state=app) == app


def test_remove_endpoint_matches_address_and_port_only() -> None:
    app = fold(CREATE, endpoint(port=1), endpoint(port=2))
    after = fold({**removal(port=1), "gear_id": "someothergear"}, state=app)
    assert after is not None and [m.port for m in after.members] == [2]


def test_re_adding_an_endpoint_replaces_its_mappings() -> None:
    app = fold(endpoint(), endpoint(mappings=[{"frontend": "/x", "backend": "/y"}]))
    assert app is not None
    assert [(r.frontend, r.backend) for r in routes(app)] == [("/x", "/y")]


def test_legacy_gear_events_act_like_endpoint_events() -> None:
    app = fold({**endpoint(), "action": "add_gear", "deprecated": "use add_public_endpoint"})
    assert app == fold(endpoint())
    assert fold({**removal(), "action": "delete_gear"}, state=app) == fold(CREATE)


def test_delete_application_removes_everything() -> None:
    certs = Certs("foo.example.com")
    app = fold(CREATE, endpoint(), alias("add_alias", "foo.example.com"))
    assert fold(certs.add_ssl("foo.example.com"), DELETE, state=app) is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (endpoint(types=["web_framework"]), "types ['web_framework'] are not among"),
        (endpoint(types=[]), "types [] are not among"),
        (endpoint(protocols=["tcp"]), "protocols ['tcp'] include neither http nor ws"),
        (endpoint(protocols=["https"]), "protocols ['https'] include neither"),
    ],
)
def test_endpoints_of_other_types_or_protocols_are_ignored(
    fields: dict[str, Any], reason: str
) -> None:
    found = ignored_reason(event(fields), POLICY)
    assert found is not None and found.startswith(reason)
    assert fold(fields) is None  # not even the pool appears
    app = fold(CREATE)
    assert fold(fields, state=app) == app


def test_configured_endpoint_types_are_honoured() -> None:
    web = OpenShiftPolicy(domain="cloud.example.org", endpoint_types=("web_framework",))
    assert ignored_reason(event(endpoint(types=["web_framework"])), web) is None
    assert ignored_reason(event(endpoint(types=["load_balancer"])), web) is not None
    assert ignored_reason(event(endpoint(protocols=["ws"])), POLICY) is None


def test_members_disagreeing_on_a_backend_prefix_take_the_most_common() -> None:
    one = [{"frontend": "/api", "backend": "/v1"}]
    two = [{"frontend": "/api", "backend": "/v2"}]
    app = fold(endpoint(port=1, mappings=one), endpoint(port=2, mappings=two))
    app = fold(endpoint(port=3, mappings=two), state=app)
    assert app is not None
    assert routes(app) == (
        Route(
            hostname=HA,
            frontend="/api",
            backend="/v2",
            members=(("10.4.59.221", 2), ("10.4.59.221", 3)),
        ),
    )


def test_an_app_whose_ha_name_is_too_long_is_refused() -> None:
    with pytest.raises(ValidationError):
        fold({**CREATE, "app_name": "a" * 40, "namespace": "b" * 30})


def test_aliases_and_certificates_come_and_go_without_debris() -> None:
    certs = Certs("foo.example.com")
    app = fold(CREATE, alias("add_alias", "foo.example.com"), certs.add_ssl("foo.example.com"))
    assert app is not None and app.certificate("foo.example.com") is not None
    no_ssl = fold(alias("remove_ssl", "foo.example.com"), state=app)
    assert no_ssl is not None and no_ssl.certificate("foo.example.com") is None
    assert no_ssl.aliases == ("foo.example.com",)  # still routed, on the wildcard certificate
    gone = fold(alias("remove_alias", "foo.example.com"), state=app)
    assert gone == fold(CREATE)  # the alias took its certificate with it


def test_add_ssl_implies_its_alias() -> None:
    certs = Certs("bar.example.com")
    app = fold(CREATE, certs.add_ssl("bar.example.com"))
    assert app is not None and app.aliases == ("bar.example.com",)


# Certificates


def _key_of(pem: str) -> bytes:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ssl(certs: Certs, key: str, phrase: str | None) -> AddSsl:
    parsed = event(certs.add_ssl("foo.example.com", key, pass_phrase=phrase))
    assert isinstance(parsed, AddSsl)
    return parsed


@pytest.mark.parametrize("form", ["key_pem", "pkcs8_encrypted", "traditional_encrypted"])
def test_the_key_is_decrypted_with_the_pass_phrase(form: str) -> None:
    certs = Certs("foo.example.com")
    encrypted = form != "key_pem"
    material = tls_material(_ssl(certs, getattr(certs, form), certs.phrase if encrypted else None))
    assert "ENCRYPTED" not in material.key_pem
    assert material.key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert _key_of(material.key_pem) == _key_of(certs.key_pem)
    assert material.chain_pem == certs.chain_pem
    assert "hidden" in repr(material) and "PRIVATE" not in repr(material)


def test_an_rsa_key_works_too() -> None:
    certs = Certs("foo.example.com")
    certs.cert = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("foo.example.com")
    certs.chain_pem = "".join(b.bytes().decode() for b in certs.cert.cert_chain_pems)
    material = tls_material(_ssl(certs, certs.cert.private_key_pem.bytes().decode(), None))
    assert _key_of(material.key_pem) == _key_of(certs.cert.private_key_pem.bytes().decode())


def test_a_wrong_pass_phrase_is_refused_clearly() -> None:
    certs = Certs("foo.example.com")
    with pytest.raises(ValidationError, match="the pass_phrase does not decrypt it") as info:
        tls_material(_ssl(certs, certs.pkcs8_encrypted, "wrong"))
    assert info.value.field == "private_key"


def test_an_encrypted_key_without_a_pass_phrase_is_refused_clearly() -> None:
    certs = Certs("foo.example.com")
    with pytest.raises(ValidationError, match="encrypted and the event has no pass_phrase"):
        tls_material(_ssl(certs, certs.traditional_encrypted, None))


def test_a_pass_phrase_for_a_plain_key_is_not_needed() -> None:
    certs = Certs("foo.example.com")
    assert tls_material(_ssl(certs, certs.key_pem, "unneeded")).key_pem


def test_a_key_of_another_certificate_is_refused() -> None:
    certs, other = Certs("foo.example.com"), Certs("foo.example.com")
    with pytest.raises(ValidationError, match="does not match its certificate"):
        tls_material(_ssl(certs, other.key_pem, None))


def test_garbage_between_pem_markers_is_refused() -> None:
    certs = Certs("foo.example.com")
    broken = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    bad_cert = replace(_ssl(certs, certs.key_pem, None), certificate=broken)
    with pytest.raises(ValidationError, match="not a PEM certificate"):
        tls_material(bad_cert)
    bad_key = replace(
        _ssl(certs, certs.key_pem, None),
        private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    with pytest.raises(ValidationError, match="cannot be read"):
        tls_material(bad_key)


# Idempotency: the property that makes redelivery harmless.

ports = st.integers(1, 3)
aliases = st.sampled_from(["a.example.com", "b.example.com"])
mappings = st.sampled_from(
    [ROOT_AND_HEALTH, [{"frontend": "", "backend": ""}], [{"frontend": "/x", "backend": "/y"}]]
)
CERTS = Certs("a.example.com")
messages = st.one_of(
    st.just(CREATE),
    st.just(DELETE),
    st.builds(lambda p, m: endpoint(port=p, mappings=m), ports, mappings),
    st.builds(lambda p: removal(port=p), ports),
    st.builds(lambda a: alias("add_alias", a), aliases),
    st.builds(lambda a: alias("remove_alias", a), aliases),
    st.builds(lambda a: CERTS.add_ssl(a), aliases),
    st.builds(lambda a: alias("remove_ssl", a), aliases),
)


@settings(deadline=None, max_examples=150)
@given(st.lists(messages, max_size=12), messages)
def test_every_event_applied_twice_in_a_row_is_applied_once(
    history: list[dict[str, Any]], last: dict[str, Any]
) -> None:
    state = fold(*history)
    once = fold(last, state=state)
    assert fold(last, state=once) == once


@settings(deadline=None, max_examples=100)
@given(st.lists(messages, max_size=12))
def test_state_never_holds_a_certificate_without_its_alias(history: list[dict[str, Any]]) -> None:
    app = fold(*history)
    if app is not None:
        assert {a for a, _ in app.certificates} <= set(app.aliases)
        assert list(app.members) == sorted(app.members)
        assert len({(m.address, m.port) for m in app.members}) == len(app.members)
        assert all(isinstance(m, Member) for m in app.members)
