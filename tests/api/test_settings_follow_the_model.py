"""A proxy's settings are defined once, on the model: the wire schemas, the API's
conversions and the store's row mapping follow ``Proxy``'s fields, defaults included."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest

from portway.api import convert, schemas
from portway.model import (
    CacheKey,
    CacheSettings,
    HealthCheck,
    Limits,
    Privacy,
    Proxy,
    PurgeSettings,
    Rewrite,
    SessionPersistence,
    StreamSettings,
    Timeouts,
    TlsSettings,
    ToolSettings,
)
from portway.model.proxy import OPTIONS, SETTINGS, defaults
from portway.model.purge_key import hash_key, matches, parsed
from portway.store import rows
from portway.store.schema import proxies

PURGE_KEY = "0123456789abcdef0123456789abcdef"
# Every setting, and every field of every option object, away from its default, so that
# a setting a conversion forgets comes back as its default and fails the round trips.
SAMPLE = Proxy(
    id="0123456789abcdef0123456789abcdef",
    project="alpha",
    hostname="wiki.test",
    path_prefix="/w",
    backend_port=8080,
    algorithm="consistent_hash",
    session_persistence=SessionPersistence(type="app_cookie", cookie_name="SID"),
    hash_key="header:x-user",
    health_check=HealthCheck(
        type="tcp",
        method="HEAD",
        path="/up",
        host="check.test",
        interval=7.0,
        timeout=1.5,
        rise=4,
        fall=5,
        expected_codes="200",
    ),
    tls=TlsSettings(certificate="c1", redirect_http=True, hsts=True),
    cache=CacheSettings(
        enabled=True,
        max_bytes=1 << 20,
        default_ttl=30.0,
        key=CacheKey(query=False, headers=("accept-language",)),
    ),
    purge=PurgeSettings(allow_from=("127.0.0.0/8",), key_hash=hash_key(PURGE_KEY)),
    timeouts=Timeouts(connect=1.0, first_byte=2.0, idle=3.0, total=4.0, websocket_idle=5.0),
    limits=Limits(max_body_bytes=1024, rate=2.5, burst=7, deny=("192.0.2.0/24", "2001:db8::/32")),
    privacy=Privacy(forwarded_for="off"),
    rewrite=Rewrite(backend_prefix="/inner"),
    toolforge=ToolSettings(canonical=True),
    listen_port=8772,
    protocol="tcp",
    stream=StreamSettings(proxy_protocol=True, max_connections=10),
    source="api",
    created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    updated_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
    revision=7,
)


def _settings(proxy: Proxy) -> dict[str, Any]:
    return {name: getattr(proxy, name) for name in SETTINGS}


def _sub_schema(model: type[pydantic.BaseModel], name: str) -> type[pydantic.BaseModel]:
    annotation = model.model_fields[name].annotation
    found = [t for t in typing.get_args(annotation) or (annotation,) if isinstance(t, type)]
    models = [t for t in found if issubclass(t, pydantic.BaseModel)]
    assert len(models) == 1, f"{model.__name__}.{name} is not one option sub-schema"
    return models[0]


def test_the_sample_moves_every_setting_off_its_default() -> None:
    proxy_defaults = defaults(Proxy)
    for name in SETTINGS:
        if name in proxy_defaults:
            assert getattr(SAMPLE, name) != proxy_defaults[name], name
    for option in OPTIONS:
        value = getattr(SAMPLE, option.name)
        for field, default in defaults(option.type).items():
            assert getattr(value, field) != default, f"{option.name}.{field}"


def test_the_model_derives_settings_and_options_from_proxys_fields() -> None:
    names = [f.name for f in dataclasses.fields(Proxy)]
    assert set(SETTINGS) == set(names) - {
        "id",
        "project",
        "backends",
        "source",
        "created_at",
        "updated_at",
        "revision",
    }
    assert {o.name: o.type for o in OPTIONS} == {
        "session_persistence": SessionPersistence,
        "health_check": HealthCheck,
        "tls": TlsSettings,
        "cache": CacheSettings,
        "purge": PurgeSettings,
        "timeouts": Timeouts,
        "limits": Limits,
        "privacy": Privacy,
        "rewrite": Rewrite,
        "toolforge": ToolSettings,
        "stream": StreamSettings,
    }
    bare = Proxy(id="", project="", hostname="x.test")
    assert all(getattr(bare, o.name) == o.default for o in OPTIONS)


def test_request_schemas_carry_exactly_the_settings() -> None:
    assert set(schemas.ProxyCreate.model_fields) == {*SETTINGS, "backends"}
    assert set(schemas.ProxyUpdate.model_fields) == set(SETTINGS)
    every_field = {f.name for f in dataclasses.fields(Proxy)}
    assert set(schemas.ProxyOut.model_fields) == every_field | {"status", "errors", "dataplane"}


def test_create_schema_defaults_are_the_models() -> None:
    proxy_defaults = defaults(Proxy)
    for name in SETTINGS:
        field = schemas.ProxyCreate.model_fields[name]
        if name not in proxy_defaults:
            assert field.is_required(), name
        elif name not in {o.name for o in OPTIONS}:
            assert field.default == proxy_defaults[name], name
        else:
            assert field.default is None, name  # absent: the option's default (below)


# The one field whose wire name is not the model's: the purge key is written in clear
# (``key``) and kept only as its hash (``key_hash``).
WIRE_NAMES = {"key_hash": "key"}


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_option_sub_schemas_have_the_models_fields_and_defaults(option: Any) -> None:
    sub = _sub_schema(schemas.ProxyCreate, option.name)
    assert _sub_schema(schemas.ProxyUpdate, option.name) is sub
    model_fields = [WIRE_NAMES.get(f.name, f.name) for f in dataclasses.fields(option.type)]
    assert list(sub.model_fields) == model_fields
    model_defaults = {WIRE_NAMES.get(k, k): v for k, v in defaults(option.type).items()}
    for name, field in sub.model_fields.items():
        if name in model_defaults:
            assert not field.is_required(), name
            assert _as_model(field.get_default(call_default_factory=True)) == _as_model(
                model_defaults[name]
            ), name
        else:
            assert field.is_required(), name


def _as_model(value: Any) -> Any:
    """A default as plain data: a nested sub-schema (or option object) as its dict,
    a list as a tuple, so the wire's defaults compare with the model's."""
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: _as_model(v) for k, v in value.items()}
    return tuple(value) if isinstance(value, list | tuple) else value


def test_an_omitted_setting_is_the_models_default() -> None:
    draft, backends = convert.proxy_draft(schemas.ProxyCreate(hostname="x.test"))
    assert draft == Proxy(id="", project="", hostname="x.test") and backends == []


def test_api_conversions_round_trip_every_setting() -> None:
    out = convert.proxy_out(SAMPLE, lambda _p, _b: {"health": "unknown"})
    sent = {name: out[name] for name in SETTINGS}
    # The purge key is never read back (only key_set): a client sends it again to keep it.
    assert out["purge"] == {"allow_from": ["127.0.0.0/8"], "key_set": True}
    sent["purge"] = {"allow_from": ["127.0.0.0/8"], "key": PURGE_KEY}
    draft, _ = convert.proxy_draft(schemas.ProxyCreate.model_validate(sent))
    changes = convert.proxy_changes(schemas.ProxyUpdate.model_validate(sent))
    for got in (_settings(draft), changes):
        # The key comes back as a hash of its own (a fresh salt) that the key matches.
        key_hash = got["purge"].key_hash
        assert key_hash != SAMPLE.purge.key_hash and PURGE_KEY not in key_hash
        assert matches(*parsed(key_hash), PURGE_KEY.encode())
        got["purge"] = SAMPLE.purge
        assert got == _settings(SAMPLE)


def test_row_mapping_has_the_tables_columns_and_round_trips() -> None:
    row = rows.proxy_to_row(SAMPLE)
    assert set(row) == {c.name for c in proxies.c}
    assert {o.name for o in OPTIONS} == rows.JSON_COLUMNS
    assert rows.proxy_from_row(row) == SAMPLE
    as_text = {k: json.dumps(v) if k in rows.JSON_COLUMNS else v for k, v in row.items()}
    assert rows.BulkProxyDecoder().proxy(as_text, ()) == SAMPLE


def test_null_option_columns_read_as_the_models_defaults() -> None:
    row = {**rows.proxy_to_row(SAMPLE), **dict.fromkeys(rows.JSON_COLUMNS)}
    read = rows.proxy_from_row(row)
    assert all(getattr(read, o.name) == o.default for o in OPTIONS)
    text_row = rows.BulkProxyDecoder().proxy(row, ())
    assert all(getattr(text_row, o.name) == o.default for o in OPTIONS)
