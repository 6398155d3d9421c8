"""Backends of a proxy: list, associate, replace the whole set, update, disassociate.

A backend reference is its id or ``address:port`` (IPv6 as ``[addr]:port``). Replacing
the set keeps the ids of backends whose address and port stay, so balancer and health
state survive.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from portway.errors import ConflictError, NotFoundError, RefusedAddressError, ValidationError
from portway.model import Backend, Proxy
from portway.model.backend_policy import BackendPolicy
from portway.service import validation
from portway.service.base import new_id

_ID = re.compile(r"[0-9a-f]{32}\Z")
# Per proxy. Far above any pool we know of; it bounds request bodies and snapshot rows.
MAX_BACKENDS = 1000


@dataclass(frozen=True, kw_only=True, slots=True)
class BackendSpec:
    """A backend as a caller asks for it; ``port`` None means the proxy's backend_port."""

    address: str
    port: int | None = None
    weight: int = 1
    backup: bool = False
    tls: bool = False  # speak TLS to the backend (Backend.tls)
    url: str | None = None  # the URL text a compat API got (address and port parsed from it)
    pattern: str | None = None  # Toolforge route pattern (only a tool's proxy uses it)


@dataclass(frozen=True, kw_only=True, slots=True)
class ProxyBackend:
    """A backend with the id of its proxy, which a reference by hostname does not give
    (health and balancer state are kept per proxy id and backend id)."""

    proxy_id: str
    backend: Backend


def build_backend(
    spec: BackendSpec,
    default_port: int,
    source: str,
    policy: BackendPolicy,
    *,
    field: str = "backends",
) -> Backend:
    """A validated backend with a fresh id; an address the policy refuses is a 422."""
    address = validation.address(spec.address, f"{field}.address")
    port = validation.port(default_port if spec.port is None else spec.port, f"{field}.port")
    refused = policy.check_backend(address, port)
    if refused is not None:
        raise RefusedAddressError(f"{field}.address: {refused}", field=f"{field}.address")
    return Backend(
        id=new_id(),
        address=address,
        port=port,
        weight=validation.weight(spec.weight, f"{field}.weight"),
        backup=spec.backup,
        tls=spec.tls,
        source=source,
        url=spec.url,
        pattern=validation.pattern(spec.pattern, f"{field}.pattern"),
    )


def build_backends(
    specs: Sequence[BackendSpec], default_port: int, source: str, policy: BackendPolicy
) -> tuple[Backend, ...]:
    """Validated backends with fresh ids; the same address:port twice is a 422."""
    if len(specs) > MAX_BACKENDS:
        raise ValidationError(f"a proxy has at most {MAX_BACKENDS} backends", field="backends")
    result: list[Backend] = []
    seen: set[tuple[str, int, str | None]] = set()
    for index, spec in enumerate(specs):
        field = f"backends[{index}]"
        backend = build_backend(spec, default_port, source, policy, field=field)
        key = _key(backend)
        if key in seen:
            raise ValidationError(
                f"backend {backend.address}:{backend.port} is listed twice",
                field=f"backends[{index}]",
            )
        seen.add(key)
        result.append(backend)
    return validation.backend_patterns(tuple(result))  # one destination per pattern


def _key(backend: Backend) -> tuple[str, int, str | None]:
    # A tool may send several patterns to one destination (see migration 0007).
    return backend.address, backend.port, backend.pattern


def find_backend(proxy: Proxy, ref: str) -> Backend:
    """The backend of ``proxy`` named by id or ``address:port``, else 404."""
    for backend in proxy.backends:
        if backend.id == ref:
            return backend
    if not _ID.match(ref):
        address, _, port = ref.rpartition(":")
        try:
            key = (validation.address(address), int(port))
        except (ValueError, ValidationError):
            key = None
        for backend in proxy.backends:
            if _key(backend)[:2] == key:
                return backend
    raise NotFoundError(f"backend {ref} not found", field="backend")


def merge_backends(current: Sequence[Backend], wanted: Sequence[Backend]) -> tuple[Backend, ...]:
    """``wanted``, reusing the id and source of any current backend at the same address
    (and its URL text, unless the new one brings its own)."""
    existing = {_key(b): b for b in current}
    merged = []
    for backend in wanted:
        old = existing.get(_key(backend))
        if old is not None:
            backend = dataclasses.replace(
                backend, id=old.id, source=old.source, url=backend.url or old.url
            )
        merged.append(backend)
    return tuple(merged)


def check_new_backend(proxy: Proxy, backend: Backend) -> None:
    if len(proxy.backends) >= MAX_BACKENDS:
        raise ValidationError(f"a proxy has at most {MAX_BACKENDS} backends", field="backends")
    if any(_key(b) == _key(backend) for b in proxy.backends):
        raise ConflictError(
            f"backend {backend.address}:{backend.port} is already associated", field="address"
        )
    if backend.pattern is not None and any(b.pattern == backend.pattern for b in proxy.backends):
        raise ConflictError(f"pattern {backend.pattern!r} already has a backend", field="pattern")
