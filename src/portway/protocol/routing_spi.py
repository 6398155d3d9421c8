"""OpenShift 2.x routing SPI messages, sans-IO: one message body in, one typed event or
a ``MalformedEvent`` out (compat.md §3).

The broker plugin serialises a Ruby hash with ``to_yaml``, so keys and the action are
Ruby symbols (``:action: :add_public_endpoint``); a YAML 1.1 reader sees them as
strings with a leading colon. Every key and symbol-valued field is accepted in both
spellings (``:app_name`` and ``app_name``, ``:add_alias`` and ``add_alias``).

Rules:

1. The body is UTF-8 YAML of at most ``MAX_BODY`` bytes holding one mapping; anything
   else (bad bytes, bad YAML, Ruby object tags, a list) is malformed.
2. ``action`` names one of ``ACTIONS``; the legacy ``add_gear``/``delete_gear`` are read as
   ``add_public_endpoint``/``remove_public_endpoint`` with ``legacy=True``.
3. Each action's required fields must be present with the right type; fields the
   action does not use are ignored (the plugin adds some, e.g. ``deprecated``).
4. Every string that can reach a hostname, an address or a path is checked here:
   ``app_name`` and ``namespace`` are DNS-label-safe alphanumerics (lower-cased, as
   OpenShift compares them), ``alias`` is a hostname, ``public_address`` an IP address,
   ``public_port`` 1-65535, mapping paths RFC 3986 path prefixes (``''`` is ``/``).

Nothing here decrypts keys or decides routes: that is sources/openshift.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from portway.errors import ValidationError
from portway.model import normalize_hostname, normalize_path_prefix

MAX_BODY: Final = 1 << 20  # a certificate chain and key fit many times over
_NAME = re.compile(r"[a-z0-9]{1,63}\Z")  # OpenShift app and namespace names
_GEAR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_WORD = re.compile(r"[A-Za-z0-9_.+-]{1,64}\Z")  # protocol, type and port names
# libyaml when present: the parser dominates the cost of a small event.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, kw_only=True, slots=True)
class PathMapping:
    """A path mapping of an endpoint: requests under ``frontend`` go to ``backend``."""

    frontend: str  # a normalised path prefix: "/" or "/health"
    backend: str


ROOT_MAPPING: Final = PathMapping(frontend="/", backend="/")


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateApplication:
    app_name: str
    namespace: str
    scalable: bool = False
    ha: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class DeleteApplication:
    app_name: str
    namespace: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AddPublicEndpoint:
    app_name: str
    namespace: str
    gear_id: str
    public_port_name: str
    public_address: str  # an IP address, compressed form
    public_port: int
    protocols: tuple[str, ...]
    types: tuple[str, ...]
    mappings: tuple[PathMapping, ...] = (ROOT_MAPPING,)
    legacy: bool = False  # sent as the deprecated add_gear


@dataclass(frozen=True, kw_only=True, slots=True)
class RemovePublicEndpoint:
    app_name: str
    namespace: str
    gear_id: str
    public_address: str
    public_port: int
    legacy: bool = False  # sent as the deprecated delete_gear


@dataclass(frozen=True, kw_only=True, slots=True)
class AddAlias:
    app_name: str
    namespace: str
    alias: str  # a hostname, lower-case


@dataclass(frozen=True, kw_only=True, slots=True)
class RemoveAlias:
    app_name: str
    namespace: str
    alias: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AddSsl:
    app_name: str
    namespace: str
    alias: str
    certificate: str  # the PEM of ``:ssl``
    private_key: str  # PEM, possibly encrypted
    pass_phrase: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RemoveSsl:
    app_name: str
    namespace: str
    alias: str


RoutingEvent = (
    CreateApplication
    | DeleteApplication
    | AddPublicEndpoint
    | RemovePublicEndpoint
    | AddAlias
    | RemoveAlias
    | AddSsl
    | RemoveSsl
)


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    """Why a message cannot be read; ``field`` names the offending key when there is one."""

    reason: str
    field: str | None = None


def parse_event(body: bytes | str) -> RoutingEvent | MalformedEvent:
    """The event ``body`` describes, or why it describes none."""
    try:
        return _event(_document(body))
    except ValidationError as exc:
        return MalformedEvent(exc.message, exc.field)


def unsymbol(value: object) -> object:
    """A Ruby symbol as YAML shows it (``":name"``) → ``"name"``; anything else as is."""
    if isinstance(value, str) and value.startswith(":") and len(value) > 1:
        return value[1:]
    return value


def _document(body: bytes | str) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise ValidationError(f"message larger than {MAX_BODY} bytes")
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("message is not UTF-8") from None
    try:
        loaded = yaml.load(body, Loader=_LOADER)  # a safe loader: no Python objects
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ValidationError(f"not YAML: {_first_line(exc)}") from None
    if not isinstance(loaded, dict):
        raise ValidationError(f"expected a YAML mapping, got {type(loaded).__name__}")
    document: dict[str, Any] = {}
    for key, value in loaded.items():
        name = unsymbol(key)
        if not isinstance(name, str):
            raise ValidationError(f"key {_show(key)} is not a string")
        document[name] = value
    return document


def _show(value: object) -> str:
    """A value for an error message: never the repr of a container, which an alias
    bomb makes exponentially large."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    return f"a {type(value).__name__}"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _event(doc: Mapping[str, Any]) -> RoutingEvent:
    action = unsymbol(doc.get("action"))
    if action is None:
        raise ValidationError("missing field action", field="action")
    if not isinstance(action, str):
        raise ValidationError("action is not a string", field="action")
    build = _BUILDERS.get(action)
    if build is None:
        raise ValidationError(f"unknown action {_show(action)}", field="action")
    return build(doc)


# Field readers: each returns the checked value of ``doc[key]`` or raises.


def _get(doc: Mapping[str, Any], key: str) -> Any:
    if key not in doc or doc[key] is None:
        raise ValidationError(f"missing field {key}", field=key)
    return doc[key]


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = _get(doc, key)
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{key} must be a non-empty string", field=key)
    return value


def _name(doc: Mapping[str, Any], key: str) -> str:
    value = _text(doc, key).lower()
    if not _NAME.match(value):
        raise ValidationError(f"{key} must be 1-63 letters and digits", field=key)
    return value


def _gear_id(doc: Mapping[str, Any]) -> str:
    value = _get(doc, "gear_id")
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _GEAR_ID.match(text):
        raise ValidationError("gear_id must be 1-64 letters, digits, '-' or '_'", field="gear_id")
    return text


def _word(doc: Mapping[str, Any], key: str) -> str:
    value = _text(doc, key)
    if not _WORD.match(value):
        raise ValidationError(
            f"{key} {_show(value)} has characters outside [A-Za-z0-9_.+-]", field=key
        )
    return value


def _flag(doc: Mapping[str, Any], key: str) -> bool:
    value = doc.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError(f"{key} must be true or false", field=key)
    return value


def _address(doc: Mapping[str, Any]) -> str:
    value = _text(doc, "public_address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError(
            f"public_address {_show(value)} is not an IP address", field="public_address"
        ) from None


def _port(doc: Mapping[str, Any]) -> int:
    value = _get(doc, "public_port")
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # Ruby's to_i is the norm, but older plugins sent strings
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValidationError("public_port must be an integer 1-65535", field="public_port")
    return value


def _words(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = _get(doc, key)
    if not isinstance(value, list):
        raise ValidationError(f"{key} must be a list", field=key)
    out = []
    for item in value:
        word = unsymbol(item)
        if not isinstance(word, str) or not _WORD.match(word):
            raise ValidationError(f"{key} holds {_show(item)}, not a name", field=key)
        out.append(word.lower())
    return tuple(out)


def _path(entry: Mapping[Any, Any], key: str) -> str:
    value = entry.get(key, entry.get(":" + key))
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"mappings {key} must be a string", field="mappings")
    return normalize_path_prefix(value or "/", field=f"mappings {key}")


def _mappings(doc: Mapping[str, Any]) -> tuple[PathMapping, ...]:
    value = doc.get("mappings")
    if value is None:
        return (ROOT_MAPPING,)
    if not isinstance(value, list):
        raise ValidationError("mappings must be a list", field="mappings")
    out: list[PathMapping] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise ValidationError("mappings entries must be mappings", field="mappings")
        mapping = PathMapping(frontend=_path(entry, "frontend"), backend=_path(entry, "backend"))
        if mapping not in out:
            out.append(mapping)
    return tuple(out)


def _alias(doc: Mapping[str, Any]) -> str:
    value = _text(doc, "alias")
    return normalize_hostname(value, field="alias", wildcard_ok=False)


def _pem(doc: Mapping[str, Any], key: str, label: str = "") -> str:
    value = _text(doc, key)
    if "-----BEGIN " + label not in value:
        raise ValidationError(f"{key} is not PEM {label}".rstrip(), field=key)
    return value


# Builders, one per action.


def _app(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"app_name": _name(doc, "app_name"), "namespace": _name(doc, "namespace")}


def _create(doc: Mapping[str, Any]) -> RoutingEvent:
    return CreateApplication(**_app(doc), scalable=_flag(doc, "scalable"), ha=_flag(doc, "ha"))


def _delete(doc: Mapping[str, Any]) -> RoutingEvent:
    return DeleteApplication(**_app(doc))


def _add_endpoint(doc: Mapping[str, Any], *, legacy: bool = False) -> RoutingEvent:
    return AddPublicEndpoint(
        **_app(doc),
        gear_id=_gear_id(doc),
        public_port_name=_word(doc, "public_port_name"),
        public_address=_address(doc),
        public_port=_port(doc),
        protocols=_words(doc, "protocols"),
        types=_words(doc, "types"),
        mappings=_mappings(doc),
        legacy=legacy,
    )


def _remove_endpoint(doc: Mapping[str, Any], *, legacy: bool = False) -> RoutingEvent:
    return RemovePublicEndpoint(
        **_app(doc),
        gear_id=_gear_id(doc),
        public_address=_address(doc),
        public_port=_port(doc),
        legacy=legacy,
    )


def _add_alias(doc: Mapping[str, Any]) -> RoutingEvent:
    return AddAlias(**_app(doc), alias=_alias(doc))


def _remove_alias(doc: Mapping[str, Any]) -> RoutingEvent:
    return RemoveAlias(**_app(doc), alias=_alias(doc))


def _add_ssl(doc: Mapping[str, Any]) -> RoutingEvent:
    phrase = doc.get("pass_phrase")
    if phrase is not None and not isinstance(phrase, str):
        raise ValidationError("pass_phrase must be a string", field="pass_phrase")
    return AddSsl(
        **_app(doc),
        alias=_alias(doc),
        certificate=_pem(doc, "ssl", "CERTIFICATE"),
        private_key=_pem(doc, "private_key"),
        pass_phrase=phrase or None,  # Ruby sends nil or "" for "no pass phrase"
    )


def _remove_ssl(doc: Mapping[str, Any]) -> RoutingEvent:
    return RemoveSsl(**_app(doc), alias=_alias(doc))


_BUILDERS: Final[dict[str, Callable[[Mapping[str, Any]], RoutingEvent]]] = {
    "create_application": _create,
    "delete_application": _delete,
    "add_public_endpoint": _add_endpoint,
    "remove_public_endpoint": _remove_endpoint,
    "add_gear": lambda doc: _add_endpoint(doc, legacy=True),
    "delete_gear": lambda doc: _remove_endpoint(doc, legacy=True),
    "add_alias": _add_alias,
    "remove_alias": _remove_alias,
    "add_ssl": _add_ssl,
    "remove_ssl": _remove_ssl,
}
ACTIONS: Final = tuple(_BUILDERS)
_NAMES: Final[dict[type, str]] = {
    CreateApplication: "create_application",
    DeleteApplication: "delete_application",
    AddPublicEndpoint: "add_public_endpoint",
    RemovePublicEndpoint: "remove_public_endpoint",
    AddAlias: "add_alias",
    RemoveAlias: "remove_alias",
    AddSsl: "add_ssl",
    RemoveSsl: "remove_ssl",
}


def action_name(event: RoutingEvent) -> str:
    """The action as the message spelled it (``add_gear`` for a legacy endpoint)."""
    if isinstance(event, AddPublicEndpoint) and event.legacy:
        return "add_gear"
    if isinstance(event, RemovePublicEndpoint) and event.legacy:
        return "delete_gear"
    return _NAMES[type(event)]
