"""The routing SPI parser: every action in the Ruby (symbol) and the plain spelling, and
every way a message can be malformed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from portway.protocol.routing_spi import (
    ACTIONS,
    MAX_BODY,
    ROOT_MAPPING,
    AddAlias,
    AddPublicEndpoint,
    AddSsl,
    CreateApplication,
    DeleteApplication,
    MalformedEvent,
    PathMapping,
    RemoveAlias,
    RemovePublicEndpoint,
    RemoveSsl,
    action_name,
    parse_event,
    unsymbol,
)
from tests.sources.spi_events import APP, endpoint, plain_yaml, removal, ruby_yaml

# compat.md §3, byte for byte.
COMPAT_EXAMPLE = """---
:action: :add_public_endpoint
:app_name: myapp
:namespace: mydomain
:gear_id: 53d1f0e9e0b8cd4d4f000011
:public_port_name: haproxy-1.4
:public_address: 10.4.59.221
:public_port: 35546
:protocols:
- http
- ws
:types:
- load_balancer
:mappings:
- frontend: ''
  backend: ''
- frontend: /health
  backend: /configuration/health
"""
PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

ENDPOINT = AddPublicEndpoint(
    app_name="myapp",
    namespace="demo",
    gear_id="53d1f0e9e0b8cd4d4f000011",
    public_port_name="haproxy-1.4",
    public_address="10.4.59.221",
    public_port=35546,
    protocols=("http", "ws"),
    types=("load_balancer",),
    mappings=(ROOT_MAPPING, PathMapping(frontend="/health", backend="/configuration/health")),
)
REMOVAL = RemovePublicEndpoint(
    app_name="myapp",
    namespace="demo",
    gear_id="53d1f0e9e0b8cd4d4f000011",
    public_address="10.4.59.221",
    public_port=35546,
)

# (fields as the plugin sends them, the event they mean), one or more per action.
CASES: list[tuple[dict[str, Any], object]] = [
    (
        {"action": "create_application", **APP, "scalable": True, "ha": False},
        CreateApplication(app_name="myapp", namespace="demo", scalable=True, ha=False),
    ),
    (
        {"action": "delete_application", **APP, "scalable": True, "ha": True},
        DeleteApplication(app_name="myapp", namespace="demo"),
    ),
    (endpoint(port=35546), ENDPOINT),
    (
        {**endpoint(), "action": "add_gear", "deprecated": "use add_public_endpoint"},
        replace(ENDPOINT, legacy=True),
    ),
    (removal(), REMOVAL),
    (
        {**removal(), "action": "delete_gear", "deprecated": "use remove_public_endpoint"},
        replace(REMOVAL, legacy=True),
    ),
    (
        {"action": "add_alias", **APP, "alias": "Foo.Example.COM."},
        AddAlias(app_name="myapp", namespace="demo", alias="foo.example.com"),
    ),
    (
        {"action": "remove_alias", **APP, "alias": "foo.example.com"},
        RemoveAlias(app_name="myapp", namespace="demo", alias="foo.example.com"),
    ),
    (
        {
            "action": "add_ssl",
            **APP,
            "alias": "foo.example.com",
            "ssl": PEM_CERT,
            "private_key": PEM_KEY,
            "pass_phrase": None,
        },
        AddSsl(
            app_name="myapp",
            namespace="demo",
            alias="foo.example.com",
            certificate=PEM_CERT,
            private_key=PEM_KEY,
            pass_phrase=None,
        ),
    ),
    (
        {
            "action": "add_ssl",
            **APP,
            "alias": "foo.example.com",
            "ssl": PEM_CERT,
            "private_key": PEM_KEY,
            "pass_phrase": "open sesame",
        },
        AddSsl(
            app_name="myapp",
            namespace="demo",
            alias="foo.example.com",
            certificate=PEM_CERT,
            private_key=PEM_KEY,
            pass_phrase="open sesame",
        ),
    ),
    (
        {"action": "remove_ssl", **APP, "alias": "foo.example.com"},
        RemoveSsl(app_name="myapp", namespace="demo", alias="foo.example.com"),
    ),
]


CASE_IDS = [f"{fields['action']}-{i}" for i, (fields, _) in enumerate(CASES)]


@pytest.mark.parametrize(("fields", "expected"), CASES, ids=CASE_IDS)
def test_every_action_in_the_ruby_spelling(fields: dict[str, Any], expected: object) -> None:
    assert parse_event(ruby_yaml(fields).encode()) == expected


@pytest.mark.parametrize(("fields", "expected"), CASES, ids=CASE_IDS)
def test_every_action_in_the_plain_spelling(fields: dict[str, Any], expected: object) -> None:
    assert parse_event(plain_yaml(fields)) == expected


def test_every_action_has_a_case() -> None:
    assert {fields["action"] for fields, _ in CASES} == set(ACTIONS)
    assert {action_name(event) for _, event in CASES} == set(ACTIONS)  # type: ignore[arg-type]


def test_the_compat_example_parses() -> None:
    event = parse_event(COMPAT_EXAMPLE.encode())
    assert event == replace(ENDPOINT, namespace="mydomain")


def test_symbol_values_in_lists_and_mapping_keys_are_accepted() -> None:
    text = (
        ruby_yaml(endpoint())
        .replace("- http", "- :http")
        .replace("- load_balancer", "- :load_balancer")
    )
    text = text.replace("- frontend:", "- :frontend:").replace("  backend:", "  :backend:")
    assert parse_event(text) == ENDPOINT


def test_names_are_lower_cased_and_an_integer_gear_id_is_text() -> None:
    event = parse_event(plain_yaml(endpoint(app_name="MyApp", namespace="Demo", gear_id=42)))
    assert isinstance(event, AddPublicEndpoint)
    assert (event.app_name, event.namespace, event.gear_id) == ("myapp", "demo", "42")


def test_missing_mappings_mean_the_root_and_duplicates_collapse() -> None:
    fields = endpoint()
    del fields["mappings"]
    assert parse_event(plain_yaml(fields)) == replace(ENDPOINT, mappings=(ROOT_MAPPING,))
    twice = endpoint(mappings=[{"frontend": "", "backend": ""}, {"frontend": "/", "backend": "/"}])
    assert parse_event(plain_yaml(twice)) == replace(ENDPOINT, mappings=(ROOT_MAPPING,))


def test_an_ipv6_address_is_compressed() -> None:
    event = parse_event(plain_yaml(endpoint(address="2001:DB8:0:0::1")))
    assert isinstance(event, AddPublicEndpoint) and event.public_address == "2001:db8::1"


def test_an_empty_pass_phrase_means_none() -> None:
    fields = dict(CASES[-2][0], pass_phrase="")
    event = parse_event(ruby_yaml(fields))
    assert isinstance(event, AddSsl) and event.pass_phrase is None


MALFORMED: list[tuple[str | bytes, str, str | None]] = [
    (b"\xff\xfe:action: :add_alias", "message is not UTF-8", None),
    (":action: [unclosed", "not YAML", None),
    ("- :action\n- :add_alias\n", "expected a YAML mapping, got list", None),
    ("just a string", "expected a YAML mapping, got str", None),
    ("", "expected a YAML mapping, got NoneType", None),
    ("--- !ruby/object:OpenStruct\ntable: {}\n", "not YAML", None),
    ("--- !!python/object/apply:os.system ['true']\n", "not YAML", None),
    (":app_name: myapp\n:namespace: demo\n", "missing field action", "action"),
    (":action: :add_everything\n", "unknown action 'add_everything'", "action"),
    (":action: [1]\n", "action is not a string", "action"),
    ("? [a]\n: b\n", "not YAML", None),
    ("1: a\n", "key 1 is not a string", None),
]


@pytest.mark.parametrize(("body", "reason", "field"), MALFORMED)
def test_unreadable_messages_are_malformed(
    body: str | bytes, reason: str, field: str | None
) -> None:
    event = parse_event(body)
    assert isinstance(event, MalformedEvent)
    assert event.reason.startswith(reason), event.reason
    assert event.field == field


def _without(fields: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k != key}


REQUIRED = {
    "create_application": ["app_name", "namespace"],
    "add_public_endpoint": [
        "app_name",
        "namespace",
        "gear_id",
        "public_port_name",
        "public_address",
        "public_port",
        "protocols",
        "types",
    ],
    "remove_public_endpoint": ["app_name", "namespace", "gear_id", "public_address", "public_port"],
    "add_alias": ["app_name", "namespace", "alias"],
    "add_ssl": ["app_name", "namespace", "alias", "ssl", "private_key"],
    "remove_ssl": ["app_name", "namespace", "alias"],
}
BY_ACTION = {fields["action"]: fields for fields, _ in CASES}


@pytest.mark.parametrize(("action", "key"), [(a, k) for a, keys in REQUIRED.items() for k in keys])
def test_a_missing_field_is_malformed_and_named(action: str, key: str) -> None:
    event = parse_event(ruby_yaml(_without(BY_ACTION[action], key)))
    assert event == MalformedEvent(f"missing field {key}", key)


BAD_VALUES = [
    ("app_name", "my-app"),  # OpenShift names are letters and digits
    ("app_name", "a" * 64),
    ("app_name", 12),
    ("namespace", ""),
    ("namespace", "demo\nevil"),
    ("gear_id", "id with spaces"),
    ("gear_id", True),
    ("public_port_name", "haproxy 1.4"),
    ("public_address", "gear.example.com"),
    ("public_address", "10.0.0.256"),
    ("public_port", 0),
    ("public_port", 65536),
    ("public_port", "80a"),
    ("public_port", True),
    ("protocols", "http"),
    ("protocols", ["http", ["ws"]]),
    ("types", ["load balancer"]),
    ("mappings", "/"),
    ("mappings", ["/"]),
    ("mappings", [{"frontend": "/a b", "backend": ""}]),
    ("mappings", [{"frontend": "/../etc", "backend": ""}]),
    ("mappings", [{"frontend": "health", "backend": ""}]),
    ("mappings", [{"frontend": "", "backend": 5}]),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_a_bad_endpoint_value_is_malformed_and_named(key: str, value: object) -> None:
    event = parse_event(ruby_yaml(endpoint(**{key: value})))
    assert isinstance(event, MalformedEvent), event
    assert event.field is not None and event.field.startswith(key), event


@pytest.mark.parametrize(
    ("action", "key", "value"),
    [
        ("create_application", "scalable", "yes please"),
        ("add_alias", "alias", "*.example.com"),
        ("add_alias", "alias", "no_dots"),
        ("add_alias", "alias", "bad..example.com"),
        ("add_ssl", "ssl", "not a pem"),
        ("add_ssl", "private_key", "not a pem"),
        ("add_ssl", "pass_phrase", 1234),
        ("remove_ssl", "alias", "-bad.example.com"),
    ],
)
def test_other_bad_values_are_malformed_and_named(action: str, key: str, value: object) -> None:
    event = parse_event(ruby_yaml({**BY_ACTION[action], key: value}))
    assert isinstance(event, MalformedEvent), event
    assert event.field == key


def test_a_body_over_the_limit_is_malformed_before_parsing() -> None:
    body = ruby_yaml({"action": "add_alias", **APP, "alias": "foo.example.com"})
    event = parse_event(body.encode() + b"#" * MAX_BODY)
    assert isinstance(event, MalformedEvent) and "larger than" in event.reason


def test_an_alias_bomb_is_refused_quickly() -> None:
    """YAML anchors expanding into a huge structure: the field checks stop at the first
    wrong element instead of walking the expansion."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        ref = f"*{chr(96 + i)}"
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([ref] * 9)}]")
    body = (
        "\n".join(lines)
        + "\n:action: :add_public_endpoint\n"
        + "\n".join(
            f":{k}: {v}"
            for k, v in [
                ("app_name", "a"),
                ("namespace", "b"),
                ("gear_id", "g"),
                ("public_port_name", "p"),
                ("public_address", "10.0.0.1"),
                ("public_port", 80),
            ]
        )
        + "\n:protocols: *l\n:types: [load_balancer]\n"
    )
    event = parse_event(body)
    assert isinstance(event, MalformedEvent) and event.field == "protocols"


# Property tests: the Ruby and the plain spelling always mean the same event.

names = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True)
words = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)
paths = st.from_regex(r"(/[a-z0-9._~-]{1,8}){0,3}", fullmatch=True).filter(
    lambda p: not any(s in (".", "..") for s in p.split("/"))
)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
# The last label is never numeric: such names are IP literals, which hostnames refuse.
top_labels = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostnames = st.tuples(st.lists(labels, min_size=1, max_size=3), top_labels).map(
    lambda parts: ".".join([*parts[0], parts[1]])
)
addresses = st.ip_addresses().map(str)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    app = {"app_name": draw(names), "namespace": draw(names)}
    action = draw(st.sampled_from(ACTIONS))
    fields: dict[str, Any] = {"action": action, **app}
    if action in ("create_application", "delete_application"):
        fields |= {"scalable": draw(st.booleans()), "ha": draw(st.booleans())}
    if action in ("add_public_endpoint", "add_gear", "remove_public_endpoint", "delete_gear"):
        fields |= {
            "gear_id": draw(st.from_regex(r"[0-9a-f]{24}", fullmatch=True)),
            "public_address": draw(addresses),
            "public_port": draw(st.integers(1, 65535)),
        }
    if action in ("add_public_endpoint", "add_gear"):
        fields |= {
            "public_port_name": draw(st.from_regex(r"[a-z]{1,8}-[0-9]\.[0-9]", fullmatch=True)),
            "protocols": draw(st.lists(st.sampled_from(["http", "ws", "tcp", "https"]))),
            "types": draw(st.lists(words, max_size=3)),
            "mappings": [
                {"frontend": f, "backend": b}
                for f, b in draw(st.lists(st.tuples(paths, paths), min_size=1, max_size=3))
            ],
        }
    if action in ("add_alias", "remove_alias", "add_ssl", "remove_ssl"):
        fields["alias"] = draw(hostnames)
    if action == "add_ssl":
        fields |= {
            "ssl": PEM_CERT,
            "private_key": PEM_KEY,
            "pass_phrase": draw(st.none() | st.text(min_size=1, max_size=20)),
        }
    return fields


@settings(deadline=None)
@given(messages())
def test_ruby_and_plain_spellings_mean_the_same_event(fields: dict[str, Any]) -> None:
    ruby, plain = parse_event(ruby_yaml(fields)), parse_event(plain_yaml(fields))
    assert ruby == plain
    assert not isinstance(ruby, MalformedEvent), ruby
    assert action_name(ruby) == fields["action"]
    assert (ruby.app_name, ruby.namespace) == (fields["app_name"], fields["namespace"])


@settings(deadline=None)
@given(messages(), st.data())
def test_symbol_keys_may_be_mixed_with_plain_ones(
    fields: dict[str, Any], data: st.DataObject
) -> None:
    """Any subset of the keys spelled as symbols, the action as a symbol or not."""
    symbol_keys = data.draw(st.sets(st.sampled_from(sorted(fields))))
    mixed = {(":" + k if k in symbol_keys else k): v for k, v in fields.items()}
    if data.draw(st.booleans()):
        mixed[":action" if "action" in symbol_keys else "action"] = ":" + fields["action"]
    assert parse_event(yaml.safe_dump(mixed)) == parse_event(plain_yaml(fields))


@settings(deadline=None)
@given(st.text(max_size=30))
def test_unsymbol_strips_exactly_one_leading_colon(text: str) -> None:
    out = unsymbol(":" + text)
    assert out == (text if text else ":")
    assert unsymbol(text) == (text[1:] if text.startswith(":") and len(text) > 1 else text)


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    assert parse_event(body) is not None
