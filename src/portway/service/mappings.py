"""Mappings: a domain's proxy with path prefix ``/``, as the dynamicproxy API sees it.

Each operation is one write, so what is stored and what is routed never drift apart
(the original kept a database and the routing data separately). A mapping is an ordinary
proxy: the native API shows and edits it, and its rules (zones, route, certificate,
backend policy) are the proxies' own.

DNS: a hostname that appears (``add_mapping`` creating, ``replace_mapping`` renaming) or
goes (``delete_proxy``) is written through ``ProxyRows`` (service/hostnames.py) as every
proxy is, so its records are claimed, moved and released as the native API's are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from portway.errors import ConflictError, NotFoundError, ValidationError
from portway.model import Proxy
from portway.service import validation
from portway.service.auth import Actor, require_read
from portway.service.backends import MAX_BACKENDS, BackendSpec, build_backends, merge_backends
from portway.service.base import ServiceBase
from portway.service.proxies import ProxyOps, _admit, _record, _stored
from portway.store import Reader, Transaction

ROOT = "/"


def is_mapping(proxy: Proxy) -> bool:
    """A dynamicproxy mapping is a root proxy on the shared listeners (one on a port of
    its own is not one: the original API had no ports)."""
    return proxy.path_prefix == ROOT and proxy.listen_port is None


def find_mapping(reader: Reader, project: str, domain: str) -> Proxy | None:
    """The mapping of ``project`` on ``domain`` (normalised)."""
    found = reader.find_proxies(project=project, hostname=domain)
    return next((p for p in found if is_mapping(p)), None)


def mapping_not_found(domain: str) -> NotFoundError:
    return NotFoundError(f"no mapping for {domain}", field="domain")


def _existing(reader: Reader, project: str, domain: str) -> Proxy:
    found = find_mapping(reader, project, domain)
    if found is None:
        raise mapping_not_found(domain)
    return found


class MappingOps(ProxyOps, ServiceBase):
    def list_mappings(self, actor: Actor, project: str) -> list[Proxy]:
        """The project's mappings; none (not 404) for a project Portway does not know
        yet, as the original answered for any project."""

        def query(reader: Reader) -> list[Proxy]:
            if reader.get_project(project) is None and (actor.is_admin or actor.project == project):
                return []
            require_read(reader, actor, project)
            return [p for p in reader.find_proxies(project=project) if is_mapping(p)]

        return self._read(query)

    def get_mapping(self, actor: Actor, project: str, domain: str) -> Proxy:
        def query(reader: Reader) -> Proxy:
            require_read(reader, actor, project)
            return _existing(reader, project, domain)

        return self._read(query)

    def add_mapping(
        self, actor: Actor, project: str, domain: str, specs: Sequence[BackendSpec], draft: Proxy
    ) -> Proxy:
        """Create the mapping from ``draft`` with ``specs``, or append those of
        ``specs`` it lacks (by address and port) to the existing one."""
        if self._read(lambda r: _readable(r, actor, project, domain)) is None:
            try:
                return self.create_proxy(actor, project, draft, specs)
            except ConflictError:
                # A concurrent call may have created it: then append; else a real conflict.
                if self._read(lambda r: find_mapping(r, project, domain)) is None:
                    raise
        return self._append(actor, project, domain, specs)

    def replace_mapping(
        self,
        actor: Actor,
        project: str,
        domain: str,
        new_domain: str,
        specs: Sequence[BackendSpec],
    ) -> Proxy:
        """Make ``specs`` the mapping's backends and ``new_domain`` its name, in one write."""
        with self._proxy_write(actor, project) as rows:
            tx = rows.tx
            before = _existing(tx, project, domain)
            wanted = build_backends(specs, before.backend_port, actor.source, self.backend_policy)
            merged = merge_backends(before.backends, wanted)
            after = validation.proxy(dataclasses.replace(before, hostname=new_domain))
            _admit(tx, after, claim=after.hostname != before.hostname)
            rows.update(before, after)
            for old in before.backends:
                tx.delete_backend(old.id)
            for backend in merged:
                tx.insert_backend(before.id, backend)
            return _recorded(tx, before)

    def _append(
        self, actor: Actor, project: str, domain: str, specs: Sequence[BackendSpec]
    ) -> Proxy:
        with self._write(actor, project) as tx:
            before = _existing(tx, project, domain)
            have = {(b.address, b.port) for b in before.backends}
            built = build_backends(specs, before.backend_port, actor.source, self.backend_policy)
            new = [b for b in built if (b.address, b.port) not in have]
            if len(before.backends) + len(new) > MAX_BACKENDS:
                raise ValidationError(
                    f"a proxy has at most {MAX_BACKENDS} backends", field="backends"
                )
            for backend in new:
                tx.insert_backend(before.id, backend)
            tx.touch_proxy(before.id)
            return _recorded(tx, before)


def _readable(reader: Reader, actor: Actor, project: str, domain: str) -> Proxy | None:
    require_read(reader, actor, project)
    return find_mapping(reader, project, domain)


def _recorded(tx: Transaction, before: Proxy) -> Proxy:
    """The proxy as ``tx`` left it, with the change logged as an update of it."""
    after = _stored(tx, before.id)
    _record(tx, "update", after, before=before, after=after)
    return after
