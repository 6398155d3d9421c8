"""Proxies: create, show, list, update, delete, with ownership and zone rules.

A proxy reference in a URL is its id or its hostname; a hostname selects the proxy with
path prefix "/" or, failing that, the only proxy on that hostname. Proxy rows are written
through ``ProxyRows`` (service/hostnames.py), which keeps the hostnames' DNS records.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from portway.errors import ConflictError, NotFoundError, PortwayError, ValidationError
from portway.model import Proxy, normalize_hostname
from portway.model.listen_policy import ListenPolicy
from portway.model.proxy import SETTINGS
from portway.service import validation
from portway.service.auth import Actor, require_read, require_write
from portway.service.backends import BackendSpec, build_backends
from portway.service.base import ServiceBase, new_id
from portway.service.certificates import check_proxy_tls
from portway.service.listeners import check_listener
from portway.service.zones import check_claim
from portway.store import Reader, Transaction

_ID = re.compile(r"[0-9a-f]{32}\Z")


def proxy_not_found(ref: str) -> NotFoundError:
    return NotFoundError(f"proxy {ref} not found", field="proxy")


def resolve_proxy(reader: Reader, project: str, ref: str) -> Proxy:
    """The proxy of ``project`` named by ``ref`` (id or hostname), else 404."""
    if _ID.match(ref):
        found = reader.get_proxy(ref)
        if found is not None and found.project == project:
            return found
    try:
        hostname = normalize_hostname(ref)
    except PortwayError:
        raise proxy_not_found(ref) from None
    candidates = reader.find_proxies(project=project, hostname=hostname)
    # The shared listeners' root proxy first; a proxy on a port of its own by hostname
    # only when it is the hostname's only proxy (else by id).
    root = [p for p in candidates if p.path_prefix == "/" and p.listen_port is None]
    if root or len(candidates) == 1:
        return (root or candidates)[0]
    raise proxy_not_found(ref)


def readable_proxy(reader: Reader, actor: Actor, project: str, ref: str) -> Proxy:
    """``resolve_proxy``, once ``actor`` may read ``project``."""
    require_read(reader, actor, project)
    return resolve_proxy(reader, project, ref)


def check_route_free(tx: Transaction, proxy: Proxy) -> None:
    # Other projects' proxies on the same hostname exist only on a shared host
    # (zones.check_claim); there a prefix nested in, or around, another project's would
    # take some of its paths by longest-prefix matching, so each project's prefixes must
    # stay apart from the others'.
    for other in tx.find_proxies(hostname=proxy.hostname):
        if other.id == proxy.id or other.listen_port != proxy.listen_port:
            continue  # routes on another listener never meet this one's
        if other.path_prefix == proxy.path_prefix:
            raise ConflictError(
                f"a proxy for {proxy.hostname} with path prefix {proxy.path_prefix} already exists",
                field="path_prefix",
            )
        if other.project != proxy.project and _nested(other.path_prefix, proxy.path_prefix):
            raise ConflictError(
                f"path prefix {proxy.path_prefix} overlaps a prefix that another project"
                f" routes on shared host {proxy.hostname}",
                field="path_prefix",
            )


def _nested(a: str, b: str) -> bool:
    """One normalised prefix covers the other's paths (segment-aware, as the router)."""
    return a == "/" or b == "/" or a.startswith(b + "/") or b.startswith(a + "/")


def _admit(tx: Transaction, proxy: Proxy, *, claim: bool, listen: Listening | None = None) -> None:
    """The rules a proxy passes before it is written, beyond its own fields': its project
    may claim its hostname (checked when the hostname is new), its route is free, the
    certificate it attaches covers it, and its port is one it may claim (``listen``;
    None for writers that keep a proxy's port as it was, such as the dynamicproxy API)."""
    if claim:
        check_claim(tx, proxy.project, proxy.hostname)
    check_route_free(tx, proxy)
    check_proxy_tls(tx, proxy)
    if listen is not None:
        check_listener(tx, listen.actor, proxy, listen.policy, new_port=listen.new_port)


@dataclasses.dataclass(frozen=True, slots=True)
class Listening:
    """What ``check_listener`` needs beyond the proxy: who asks, the operator's policy,
    and whether the port is new to the proxy."""

    actor: Actor
    policy: ListenPolicy
    new_port: bool


def _record(
    tx: Transaction, action: str, proxy: Proxy, *, before: Proxy | None, after: Proxy | None
) -> None:
    tx.record(
        kind="proxy",
        action=action,
        object_id=proxy.id,
        project=proxy.project,
        before=before,
        after=after,
        proxy_id=proxy.id,
    )


def _stored(tx: Transaction, proxy_id: str) -> Proxy:
    """The proxy as this transaction wrote it (with the store's timestamps and revision)."""
    stored = tx.get_proxy(proxy_id)
    assert stored is not None
    return stored


class ProxyOps(ServiceBase):
    def create_proxy(
        self, actor: Actor, project: str, draft: Proxy, backends: Sequence[BackendSpec] = ()
    ) -> Proxy:
        """Create a proxy from ``draft`` (its id, project, source, timestamps and
        backends are ignored) with ``backends``; returns the stored proxy."""
        with self._proxy_write(actor, project) as rows:
            tx = rows.tx
            proxy = validation.proxy(
                dataclasses.replace(draft, id=new_id(), project=project, source=actor.source)
            )
            built = build_backends(backends, proxy.backend_port, actor.source, self.backend_policy)
            proxy = dataclasses.replace(proxy, backends=built)
            _admit(tx, proxy, claim=True, listen=Listening(actor, self.listen_policy, True))
            rows.insert(proxy)
            created = _stored(tx, proxy.id)
            _record(tx, "create", created, before=None, after=created)
        return created

    def list_proxies(
        self, actor: Actor, project: str, *, hostname: str | None = None
    ) -> list[Proxy]:
        """The project's proxies, optionally only those on ``hostname``."""
        wanted = None if hostname is None else normalize_hostname(hostname)

        def query(reader: Reader) -> list[Proxy]:
            require_read(reader, actor, project)
            return reader.find_proxies(project=project, hostname=wanted)

        return self._read(query)

    def get_proxy(self, actor: Actor, project: str, ref: str) -> Proxy:
        return self._read(lambda reader: readable_proxy(reader, actor, project, ref))

    def purgeable_proxy(self, actor: Actor, project: str, ref: str) -> Proxy:
        """The proxy whose cache ``actor`` wants purged: a write (member or admin), though
        it changes no configuration, so nothing is recorded in the change log."""

        def query(reader: Reader) -> Proxy:
            require_write(reader, actor, project)
            return resolve_proxy(reader, project, ref)

        return self._read(query)

    def update_proxy(
        self, actor: Actor, project: str, ref: str, changes: Mapping[str, Any]
    ) -> Proxy:
        """Apply ``changes`` (setting name → new domain value) to a proxy."""
        unknown = sorted(set(changes) - set(SETTINGS))
        if unknown:
            raise ValidationError(f"{unknown[0]} cannot be changed", field=unknown[0])
        with self._proxy_write(actor, project) as rows:
            tx = rows.tx
            before = resolve_proxy(tx, project, ref)
            after = validation.proxy(dataclasses.replace(before, **changes))
            new_port = after.listen_port != before.listen_port
            listen = Listening(actor, self.listen_policy, new_port)
            _admit(tx, after, claim=after.hostname != before.hostname, listen=listen)
            rows.update(before, after)
            updated = _stored(tx, before.id)
            _record(tx, "update", before, before=before, after=updated)
        return updated

    def delete_proxy(self, actor: Actor, project: str, ref: str) -> None:
        with self._proxy_write(actor, project) as rows:
            before = resolve_proxy(rows.tx, project, ref)
            rows.delete(before)
            _record(rows.tx, "delete", before, before=before, after=None)
