"""OpenShift applications as Portway proxies: one routing event, one transaction.

An application's state (``AppRoutes``, sources/openshift_routes.py) is kept as the
source's record ``a:<namespace>/<app>`` (its aliases and endpoints; a certificate only
by id); each of its hostnames is claimed by the record ``h:<hostname>``, so two
applications never share one, endpoints or not. ``apply_openshift_event`` folds an
event into that state and makes the source's proxies of the application equal
``routes(state)``:

- one proxy per (hostname, frontend prefix) in the project named for the namespace
  (created on first use), its ``rewrite`` the backend prefix, its backends the members
  (checked by the operator's backend policy, as any backend), all with the source's name;
- an alias's certificate (``add_ssl``) is a certificate of that project named
  ``openshift <alias>``, attached to every proxy of the alias; ``remove_ssl`` detaches
  and deletes it, so the default (wildcard) certificate serves the alias again;
- proxies of another source or another project are never changed: a hostname or
  prefix they hold refuses the event (ConflictError), and so does a hostname another
  application holds.

Everything happens in one transaction, recorded once (kind ``openshift``, the actor the
source, the message id in ``after``); every proxy it touched is named to the change feed.
An event that changes nothing (a redelivery) writes nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from portway.errors import ConflictError, ValidationError
from portway.model import Backend, Certificate, Project, Proxy, Rewrite, TlsSettings
from portway.protocol.routing_spi import PathMapping, RoutingEvent, action_name
from portway.service import validation
from portway.service.auth import Actor, require_admin
from portway.service.backends import MAX_BACKENDS, BackendSpec, build_backend
from portway.service.base import ServiceBase, new_id
from portway.service.certificates import check_proxy_tls
from portway.service.hostnames import ProxyRows
from portway.service.proxies import check_route_free
from portway.service.zones import check_claim
from portway.sources.openshift_routes import (
    AppKey,
    AppRoutes,
    Member,
    OpenShiftPolicy,
    Route,
    TlsMaterial,
    apply_event,
    routes,
)
from portway.tls.certs import covers, inspect_certificate

CHANGE_KIND: Final = "openshift"
# A certificate already stored: the state read back carries this in its place.
_STORED: Final = TlsMaterial(chain_pem="")


class _Unchanged(Exception):
    """Raised inside the transaction to roll back an event that changes nothing."""


def app_record_key(key: AppKey) -> str:
    return f"a:{key.namespace}/{key.app_name}"


def host_record_key(hostname: str) -> str:
    return f"h:{hostname}"


class OpenShiftOps(ServiceBase):
    def apply_openshift_event(
        self, actor: Actor, event: RoutingEvent, message_id: str, policy: OpenShiftPolicy
    ) -> bool:
        """Apply one routing event (see the module docstring); False when it changed
        nothing. Refusals are ValidationError/ConflictError/ForbiddenError."""
        require_admin(actor)  # a source acts for every namespace
        try:
            with self._proxy_write(actor) as rows:  # its hostnames get DNS records too
                _Apply(rows, actor, policy, self).run(event, message_id)
        except _Unchanged:
            return False
        return True


class _Apply:
    """One event's transaction; the steps share the transaction and what changed."""

    def __init__(
        self, rows: ProxyRows, actor: Actor, policy: OpenShiftPolicy, ops: ServiceBase
    ) -> None:
        self.rows = rows  # the only way to write proxy rows (service/hostnames.py)
        self.tx = rows.tx
        self.source = actor.source
        self.policy = policy
        self.ops = ops
        self.touched: set[str] = set()  # proxy ids, for the change feed
        self.proxy_ids: list[str] = []  # the application's proxies after the event
        self.wrote = False

    def run(self, event: RoutingEvent, message_id: str) -> None:
        key = AppKey.of(event)
        tx = self.tx
        stored = tx.get_source_record(self.source, app_record_key(key))
        before, cert_ids = decode_state(key, stored)
        after = apply_event(before, event, self.policy)
        if after is not None:
            self._claim(key, before, after)
        certs, obsolete = self._certificates(key.project, after, cert_ids)
        self._proxies(key.project, stored, after, certs)
        for cert_id in obsolete:  # detached above
            tx.delete_certificate(cert_id)
            self.wrote = True
        state = None if after is None else encode_state(after, certs, self.proxy_ids)
        self._hostnames(key, before, after)
        if state == stored and not self.wrote:
            raise _Unchanged
        tx.put_source_record(self.source, app_record_key(key), state)
        for proxy_id in sorted(self.touched):
            tx.mark_changed(proxy_id)
        tx.record(
            kind=CHANGE_KIND,
            action=action_name(event),
            object_id=key.pool,
            project=key.project,
            before=stored,
            after={"message_id": message_id, "state": state},
        )

    def _claim(self, key: AppKey, before: AppRoutes | None, after: AppRoutes) -> None:
        """The project exists, and every hostname new to the application is free."""
        tx = self.tx
        if tx.get_project(key.project) is None:
            tx.insert_project(Project(name=validation.project_name(key.project, "namespace")))
            self.wrote = True
        mine = app_record_key(key)
        for hostname in set(after.hostnames) - set(before.hostnames if before else ()):
            owner = tx.get_source_record(self.source, host_record_key(hostname))
            if owner is not None and owner != mine:
                raise ConflictError(
                    f"hostname {hostname} belongs to application {owner[2:]}", field="alias"
                )
            check_claim(tx, key.project, hostname)  # another project's, or outside a zone
            for proxy in tx.find_proxies(hostname=hostname):
                if proxy.source != self.source:
                    raise ConflictError(
                        f"hostname {hostname} is routed by a proxy {proxy.source} made",
                        field="alias",
                    )

    def _hostnames(self, key: AppKey, before: AppRoutes | None, after: AppRoutes | None) -> None:
        old = set(before.hostnames if before else ())
        new = set(after.hostnames if after else ())
        for hostname in old - new:
            self.tx.put_source_record(self.source, host_record_key(hostname), None)
        for hostname in new - old:
            self.tx.put_source_record(self.source, host_record_key(hostname), app_record_key(key))

    def _certificates(
        self, project: str, after: AppRoutes | None, cert_ids: dict[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        """alias → certificate id after the event (new ones stored), and the ids of the
        certificates to delete once no proxy attaches them."""
        wanted = dict(after.certificates) if after is not None else {}
        obsolete = [cid for alias, cid in cert_ids.items() if alias not in wanted]
        ids: dict[str, str] = {}
        for alias, material in wanted.items():
            old = cert_ids.get(alias)
            if material is _STORED and old is not None:
                ids[alias] = old
                continue
            found = self._same_certificate(old, material)
            if found is not None:
                ids[alias] = found
                continue
            if old is not None:
                obsolete.append(old)
            ids[alias] = self._store_certificate(project, alias, material)
        return ids, obsolete

    def _same_certificate(self, cert_id: str | None, material: TlsMaterial) -> str | None:
        cert = None if cert_id is None else self.tx.get_certificate(cert_id)
        if cert is not None and cert.chain_pem == material.chain_pem:
            return cert.id  # the same add_ssl again: the same certificate and key pair
        return None

    def _store_certificate(self, project: str, alias: str, material: TlsMaterial) -> str:
        info = inspect_certificate(material.chain_pem, material.key_pem)
        if not covers(info.names, alias):
            raise ValidationError(
                f"the certificate of {alias} covers {', '.join(info.names)}, not {alias}",
                field="ssl",
            )
        cert = Certificate(
            id=new_id(),
            project=project,
            name=f"openshift {alias}",
            chain_pem=material.chain_pem,
            key_pem=material.key_pem,
            names=info.names,
            not_after=info.not_after,
            fingerprint=info.fingerprint,
        )
        self.tx.insert_certificate(cert)
        self.wrote = True
        return cert.id

    def _proxies(
        self, project: str, stored: Any, after: AppRoutes | None, certs: dict[str, str]
    ) -> None:
        """The application's proxies (by the ids its record keeps: one query, where a
        search by hostname would be one per hostname) become ``routes(after)``."""
        tx = self.tx
        ids = stored.get("proxies", []) if stored is not None else []
        mine: dict[tuple[str, str], Proxy] = {}
        for proxy in tx.load_proxies(ids):  # one the tenant deleted is made again
            if proxy.project == project and proxy.source == self.source:
                mine[(proxy.hostname, proxy.path_prefix)] = proxy
        wanted = {(r.hostname, r.frontend): r for r in routes(after)} if after else {}
        for place, proxy in mine.items():
            if place not in wanted:
                self.rows.delete(proxy)
                self._touch(proxy.id)
        for place, route in sorted(wanted.items()):
            self._route(project, route, mine.get(place), certs.get(route.hostname))

    def _route(self, project: str, route: Route, have: Proxy | None, cert_id: str | None) -> None:
        if len(route.members) > MAX_BACKENDS:
            raise ValidationError(
                f"{route.hostname}{route.frontend} would have more than {MAX_BACKENDS} members",
                field="public_address",
            )
        tls = TlsSettings(certificate=cert_id)
        rewrite = Rewrite(backend_prefix=None if route.backend == route.frontend else route.backend)
        current = have.backends if have is not None else ()
        kept = {(b.address, b.port): b for b in current if b.source == self.source}
        others = tuple(b for b in current if b.source != self.source)  # the API's stay
        backends = others + tuple(kept.get(m) or self._backend(m) for m in route.members)
        if have is None:
            self._insert(project, route, tls, rewrite, backends)
            return
        self.proxy_ids.append(have.id)
        after = dataclasses.replace(have, tls=tls, rewrite=rewrite, backends=backends)
        if after == have:
            return
        if (after.tls, after.rewrite) != (have.tls, have.rewrite):
            check_proxy_tls(self.tx, after)
            self.rows.update(have, after)
        else:
            self.tx.touch_proxy(after.id)
        new_ids = {b.id for b in backends}
        for backend in have.backends:
            if backend.id not in new_ids:
                self.tx.delete_backend(backend.id)
        old_ids = {b.id for b in have.backends}
        for backend in backends:
            if backend.id not in old_ids:
                self.tx.insert_backend(after.id, backend)
        self._touch(after.id)

    def _insert(
        self,
        project: str,
        route: Route,
        tls: TlsSettings,
        rewrite: Rewrite,
        backends: tuple[Backend, ...],
    ) -> None:
        proxy = validation.proxy(
            Proxy(
                id=new_id(),
                project=project,
                hostname=route.hostname,
                path_prefix=route.frontend,
                tls=tls,
                rewrite=rewrite,
                backends=backends,
                source=self.source,
            )
        )
        check_route_free(self.tx, proxy)  # another source's proxy on this very prefix
        check_proxy_tls(self.tx, proxy)
        self.rows.insert(proxy)
        self.proxy_ids.append(proxy.id)
        self._touch(proxy.id)

    def _backend(self, member: tuple[str, int]) -> Backend:
        spec = BackendSpec(address=member[0], port=member[1])
        return build_backend(spec, 80, self.source, self.ops.backend_policy, field="public_address")

    def _touch(self, proxy_id: str) -> None:
        self.touched.add(proxy_id)
        self.wrote = True


def encode_state(app: AppRoutes, certs: dict[str, str], proxies: list[str]) -> dict[str, Any]:
    """The record of ``app``: JSON, with certificates by id only (never a key), and the
    ids of its proxies."""
    return {
        "ha": app.ha_hostname,
        "aliases": list(app.aliases),
        "members": [
            {
                "address": m.address,
                "port": m.port,
                "mappings": [[p.frontend, p.backend] for p in m.mappings],
            }
            for m in app.members
        ],
        "certificates": dict(sorted(certs.items())),
        "proxies": sorted(proxies),
    }


def decode_state(key: AppKey, value: Any) -> tuple[AppRoutes | None, dict[str, str]]:
    """The application's state and its certificates' ids, from its record (None: no
    record); a stored certificate stands in the state as ``_STORED``."""
    if value is None:
        return None, {}
    certs = {str(a): str(c) for a, c in value["certificates"].items()}
    members = tuple(
        Member(
            address=m["address"],
            port=int(m["port"]),
            mappings=tuple(PathMapping(frontend=f, backend=b) for f, b in m["mappings"]),
        )
        for m in value["members"]
    )
    app = AppRoutes(
        key=key,
        ha_hostname=value["ha"],
        aliases=tuple(value["aliases"]),
        members=members,
        certificates=tuple((alias, _STORED) for alias in sorted(certs)),
    )
    return app, certs
