"""The Cloud VPS dynamicproxy API's wire rules (compat.md §1), pure: domain names,
backend URLs, request bodies, and the shapes of its answers.

A mapping is a Portway proxy on the domain with path prefix ``/``; its backends are
kept with the URL text the client sent (``Backend.url``), which is what it reads back.
Backends made elsewhere (the native API) show as ``http://<address>:<port>``.

The original's bugs fixed here: a malformed body is a 400 (it answered 200); an
unknown domain is a 404 (it answered 400), with the same text, ``No such domain``.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from portway.errors import (
    ForbiddenError,
    MalformedError,
    NotFoundError,
    PortwayError,
    ValidationError,
)
from portway.model import Backend, Proxy, Zone, normalize_hostname
from portway.service import Actor, BackendSpec

SOURCE = "dynamicproxy"  # the provenance of what this API creates
ALGORITHM = "random"  # the original picked a backend at random
MAX_DOMAIN = 255
MAX_URL = 512  # the store's column; an http://[v6]:port URL is under 60 characters


class InvalidDomainError(MalformedError):
    """The original's ``400 Invalid domain``, answered with that exact text."""

    def __init__(self) -> None:
        super().__init__("Invalid domain", field="domain")


class NoSuchDomainError(NotFoundError):
    """The original's ``No such domain`` (with 404, not its 400), that exact text."""

    def __init__(self) -> None:
        super().__init__("No such domain", field="domain")


# Errors whose text the original's clients know: answered as that text, not as JSON.
PLAIN_ERRORS: tuple[type[PortwayError], ...] = (InvalidDomainError, NoSuchDomainError)


@dataclass(frozen=True, kw_only=True, slots=True)
class MappingRequest:
    """A PUT or POST body: the domain and its backends (parsed, URL text kept)."""

    domain: str
    backends: tuple[BackendSpec, ...]


def compat_actor(actor: Actor) -> Actor:
    """``actor`` as this API's caller: the change log names the API, and what it
    creates carries ``SOURCE``."""
    # The store keeps what fits of a long name (store.transaction.ACTOR_WIDTH).
    return dataclasses.replace(actor, name=f"{actor.name} via {SOURCE}", source=SOURCE)


def check_project(actor: Actor, project: str) -> None:
    """The token's project must be ``project`` (service-wide admins may act on any)."""
    if not actor.is_admin and actor.project != project:
        raise ForbiddenError(
            f"the token belongs to another project than {project}", field="project"
        )


def parse_domain(value: object) -> str:
    """A domain of the dynamicproxy rules (hostname.py holds them), lower-cased and
    without its trailing dot; else ``Invalid domain``."""
    if not isinstance(value, str) or len(value) > MAX_DOMAIN:
        raise InvalidDomainError
    try:
        return normalize_hostname(value)
    except ValidationError:
        raise InvalidDomainError from None


def parse_backend(value: object, field: str) -> BackendSpec:
    """``http://host[:port]`` (port 80 by default) as a backend with its text kept."""
    if not isinstance(value, str) or not value:
        raise MalformedError(f"{field} must be a URL string like http://10.0.0.5:80", field=field)
    if len(value) > MAX_URL or not value.isascii() or not value.isprintable() or " " in value:
        raise ValidationError(
            f"{field} must be an ASCII URL of at most {MAX_URL} characters", field=field
        )
    parts = urllib.parse.urlsplit(value)
    if parts.scheme.lower() != "http":
        raise ValidationError(
            f"{field} {value!r}: Portway reaches backends over plain http:// only", field=field
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise ValidationError(f"{field} {value!r} has an invalid port", field=field) from None
    extra = parts.username or parts.password or parts.query or parts.fragment
    if not parts.hostname or extra or parts.path not in ("", "/"):
        raise ValidationError(
            f"{field} {value!r} must be http://host:port, with no path, query or user",
            field=field,
        )
    return BackendSpec(address=parts.hostname, port=port, url=value)


def parse_request(body: Any) -> MappingRequest:
    """The body of a PUT or POST: ``{"domain": ..., "backends": ["http://..."]}``."""
    if not isinstance(body, dict):
        raise MalformedError(
            'the body must be a JSON object {"domain": ..., "backends": [...]}', field="body"
        )
    if "domain" not in body:
        raise MalformedError("domain is required", field="domain")
    domain = parse_domain(body["domain"])
    backends = body.get("backends")
    if not isinstance(backends, list):
        raise MalformedError("backends must be a list of URLs", field="backends")
    specs = tuple(parse_backend(b, f"backends[{i}]") for i, b in enumerate(backends))
    return MappingRequest(domain=domain, backends=specs)


def backend_url(backend: Backend) -> str:
    """The URL this API shows for ``backend``: the text it was sent, else derived."""
    if backend.url is not None:
        return backend.url
    host = f"[{backend.address}]" if ":" in backend.address else backend.address
    return f"http://{host}:{backend.port}"


def mapping_out(proxy: Proxy) -> dict[str, Any]:
    return {"domain": proxy.hostname, "backends": [backend_url(b) for b in proxy.backends]}


def routes_out(proxies: Iterable[Proxy]) -> dict[str, Any]:
    return {"routes": [mapping_out(p) for p in sorted(proxies, key=lambda p: p.hostname)]}


def zones_out(zones: Iterable[Zone], project: str) -> dict[str, Mapping[str, bool]]:
    """The zones ``project`` may put mappings in: shared ones and its own (a shared
    host is one name split by path between projects, not a zone to map names in)."""
    usable = (z for z in zones if not z.shared_host and (z.shared or z.project == project))
    return {
        z.name: {"deprecated": z.deprecated, "default": z.default, "shared": z.shared}
        for z in sorted(usable, key=lambda z: z.name)
    }


def draft(domain: str) -> Proxy:
    """The proxy a new mapping becomes (the service fills in id and project)."""
    return Proxy(id="", project="", hostname=domain, algorithm=ALGORITHM)
