"""What an OpenShift application is routed as, and how each routing event changes it:
pure values and functions shared by every implementation of ``OpenShiftRoutes``.

An application (``app_name`` in ``namespace``) is one pool named ``<app>-<namespace>``
in the project ``<namespace>`` (each namespace is a tenant). Its hostnames are
``ha-<app>-<namespace>.<domain>`` and its aliases; each hostname is routed by path
prefix to the members whose mappings name that prefix, with the prefix replaced by the
mapping's backend prefix. An alias may carry its own certificate (served by SNI); the
others are covered by the wildcard certificate of the domain.

``apply_event`` folds one event into an application's state. Every event is idempotent
(applying it twice in a row changes nothing the second time) and removing what is not
there is not an error, so a redelivered message is harmless.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from portway.errors import ValidationError
from portway.model import normalize_hostname
from portway.protocol.routing_spi import (
    AddAlias,
    AddPublicEndpoint,
    AddSsl,
    CreateApplication,
    DeleteApplication,
    PathMapping,
    RemoveAlias,
    RemovePublicEndpoint,
    RemoveSsl,
    RoutingEvent,
)

ROUTED_PROTOCOLS: Final = frozenset({"http", "ws"})
DEFAULT_ENDPOINT_TYPES: Final = ("load_balancer",)
_Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_KEY_TYPES: Final = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)


class OpenShiftRoutes(Protocol):
    """Where the OpenShift source applies events. Each ``apply`` is one service
    transaction: committed when it returns, nothing changed when it raises. The change
    log records the actor ``openshift`` and ``message_id``. Refusals of this one event are
    ``ValidationError``/``ConflictError``/``ForbiddenError``/``NotFoundError``; a
    ``StoreError`` (or any other error) means "try again later"."""

    def apply(self, event: RoutingEvent, message_id: str) -> None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenShiftPolicy:
    domain: str  # the cloud domain of the ha- hostnames
    endpoint_types: tuple[str, ...] = DEFAULT_ENDPOINT_TYPES


@dataclass(frozen=True, order=True, slots=True)
class AppKey:
    namespace: str
    app_name: str

    @classmethod
    def of(cls, event: RoutingEvent) -> AppKey:
        return cls(event.namespace, event.app_name)

    @property
    def pool(self) -> str:
        return f"{self.app_name}-{self.namespace}"

    @property
    def project(self) -> str:
        return self.namespace


@dataclass(frozen=True, order=True, kw_only=True, slots=True)
class Member:
    """An endpoint of the application (a gear's public port) and its path mappings."""

    address: str
    port: int
    mappings: tuple[PathMapping, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class TlsMaterial:
    """A certificate chain and its private key, the key unencrypted (PKCS#8 PEM)."""

    chain_pem: str
    key_pem: str = ""

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"TlsMaterial(chain_pem=<{len(self.chain_pem)} chars>, key_pem=<hidden>)"


@dataclass(frozen=True, kw_only=True, slots=True)
class AppRoutes:
    """An application's routing state; tuples are sorted, so equal states compare equal."""

    key: AppKey
    ha_hostname: str
    aliases: tuple[str, ...] = ()
    members: tuple[Member, ...] = ()
    certificates: tuple[tuple[str, TlsMaterial], ...] = ()  # (alias, material)

    @property
    def hostnames(self) -> tuple[str, ...]:
        return (self.ha_hostname, *(a for a in self.aliases if a != self.ha_hostname))

    def certificate(self, alias: str) -> TlsMaterial | None:
        return dict(self.certificates).get(alias)


@dataclass(frozen=True, order=True, kw_only=True, slots=True)
class Route:
    """One Portway proxy the application stands for: ``hostname`` + ``frontend`` prefix,
    to ``members`` (address, port) with ``frontend`` replaced by ``backend``."""

    hostname: str
    frontend: str
    backend: str
    members: tuple[tuple[str, int], ...]


def ignored_reason(event: RoutingEvent, policy: OpenShiftPolicy) -> str | None:
    """Why an endpoint is not routed (its types or protocols), or None."""
    if not isinstance(event, AddPublicEndpoint):
        return None
    if not set(event.types) & set(policy.endpoint_types):
        return f"types {list(event.types)} are not among {list(policy.endpoint_types)}"
    if not set(event.protocols) & ROUTED_PROTOCOLS:
        return f"protocols {list(event.protocols)} include neither http nor ws"
    return None


def ha_hostname(key: AppKey, domain: str) -> str:
    name = f"ha-{key.app_name}-{key.namespace}.{domain}"
    return normalize_hostname(name, field="app_name", wildcard_ok=False)


def new_app(key: AppKey, policy: OpenShiftPolicy) -> AppRoutes:
    return AppRoutes(key=key, ha_hostname=ha_hostname(key, policy.domain))


def apply_event(
    state: AppRoutes | None, event: RoutingEvent, policy: OpenShiftPolicy
) -> AppRoutes | None:
    """The application's state after ``event`` (None: it has no routes). Endpoints that
    ``ignored_reason`` rejects leave the state as it is."""
    key = AppKey.of(event)
    if isinstance(event, DeleteApplication):
        return None
    if isinstance(event, RemovePublicEndpoint | RemoveAlias | RemoveSsl):
        return None if state is None else _remove(state, event)
    if ignored_reason(event, policy) is not None:
        return state
    app = state or new_app(key, policy)  # lazily: any event naming the app creates it
    if isinstance(event, CreateApplication):
        return app
    if isinstance(event, AddPublicEndpoint):
        member = Member(
            address=event.public_address,
            port=event.public_port,
            mappings=tuple(sorted(event.mappings, key=lambda m: (m.frontend, m.backend))),
        )
        others = [m for m in app.members if (m.address, m.port) != (member.address, member.port)]
        return replace(app, members=tuple(sorted([*others, member])))
    if isinstance(event, AddAlias):
        return _with_alias(app, event.alias)
    material = tls_material(event)
    app = _with_alias(app, event.alias)  # an add_ssl implies its alias
    certs = dict(app.certificates) | {event.alias: material}
    return replace(app, certificates=tuple(sorted(certs.items(), key=lambda c: c[0])))


def _with_alias(app: AppRoutes, alias: str) -> AppRoutes:
    if alias == app.ha_hostname or alias in app.aliases:
        return app
    return replace(app, aliases=tuple(sorted([*app.aliases, alias])))


def _remove(app: AppRoutes, event: RemovePublicEndpoint | RemoveAlias | RemoveSsl) -> AppRoutes:
    if isinstance(event, RemovePublicEndpoint):
        gone = (event.public_address, event.public_port)
        return replace(app, members=tuple(m for m in app.members if (m.address, m.port) != gone))
    certs = tuple(c for c in app.certificates if c[0] != event.alias)
    if isinstance(event, RemoveSsl):
        return replace(app, certificates=certs)  # the wildcard certificate applies again
    aliases = tuple(a for a in app.aliases if a != event.alias)
    return replace(app, aliases=aliases, certificates=certs)  # no certificate left behind


def routes(app: AppRoutes) -> tuple[Route, ...]:
    """The proxies ``app`` stands for, sorted. Members that disagree on the backend
    prefix of one frontend prefix are routed to the most common one (ties: the
    smallest); the others are left out of that prefix."""
    by_frontend: dict[str, Counter[str]] = {}
    for member in app.members:
        for mapping in member.mappings:
            by_frontend.setdefault(mapping.frontend, Counter())[mapping.backend] += 1
    out: list[Route] = []
    for frontend, backends in by_frontend.items():
        backend = min(backends, key=lambda b: (-backends[b], b))
        wanted = PathMapping(frontend=frontend, backend=backend)
        members = tuple(sorted((m.address, m.port) for m in app.members if wanted in m.mappings))
        for hostname in app.hostnames:
            out.append(
                Route(hostname=hostname, frontend=frontend, backend=backend, members=members)
            )
    return tuple(sorted(out))


def tls_material(event: AddSsl) -> TlsMaterial:
    """The certificate chain and the key decrypted with ``pass_phrase``, or a
    ValidationError saying why not (a wrong pass phrase, a key that is not the
    certificate's)."""
    try:
        chain = x509.load_pem_x509_certificates(event.certificate.encode())
    except ValueError:
        raise ValidationError(
            f"ssl of {event.alias} is not a PEM certificate", field="ssl"
        ) from None
    phrase = event.pass_phrase.encode() if event.pass_phrase else None
    key = _private_key(event.private_key.encode(), phrase, event.alias)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if chain[0].public_key().public_bytes(encoding, public) != key.public_key().public_bytes(
        encoding, public
    ):
        raise ValidationError(
            f"private_key of {event.alias} does not match its certificate", field="private_key"
        )
    key_pem = key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TlsMaterial(
        chain_pem="".join(c.public_bytes(encoding).decode() for c in chain),
        key_pem=key_pem.decode(),
    )


def _private_key(pem: bytes, phrase: bytes | None, alias: str) -> _Key:
    try:
        key = serialization.load_pem_private_key(pem, password=phrase)
    except TypeError:
        if phrase is None:
            raise ValidationError(
                f"private_key of {alias} is encrypted and the event has no pass_phrase",
                field="pass_phrase",
            ) from None
        key = serialization.load_pem_private_key(pem, password=None)  # phrase not needed
    except ValueError:
        what = "the pass_phrase does not decrypt it" if phrase else "it cannot be read"
        raise ValidationError(f"private_key of {alias}: {what}", field="private_key") from None
    if not isinstance(key, _KEY_TYPES):
        raise ValidationError(
            f"private_key of {alias} is not an RSA or EC key", field="private_key"
        )
    return key
