"""Service operations on a proxy's backends (rules in ``backends.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from portway.model import Backend, Proxy
from portway.service import validation
from portway.service.auth import Actor, require_read, require_write
from portway.service.backends import (
    BackendSpec,
    build_backend,
    build_backends,
    check_new_backend,
    find_backend,
    merge_backends,
)
from portway.service.base import ServiceBase
from portway.service.proxies import resolve_proxy
from portway.store import Reader, Transaction


class BackendOps(ServiceBase):
    def list_backends(self, actor: Actor, project: str, ref: str) -> tuple[Backend, ...]:
        def query(reader: Reader) -> tuple[Backend, ...]:
            require_read(reader, actor, project)
            return resolve_proxy(reader, project, ref).backends

        return self._read(query)

    def add_backend(self, actor: Actor, project: str, ref: str, spec: BackendSpec) -> Backend:
        """Associate one backend; 409 if that address:port is already there."""

        def change(tx: Transaction, proxy: Proxy) -> tuple[str, Backend | None, Backend]:
            backend = build_backend(
                spec, proxy.backend_port, actor.source, self.backend_policy, field="backend"
            )
            check_new_backend(proxy, backend)
            tx.insert_backend(proxy.id, backend)
            return "create", None, backend

        return self._change(actor, project, ref, change)

    def replace_backends(
        self, actor: Actor, project: str, ref: str, specs: Sequence[BackendSpec]
    ) -> tuple[Backend, ...]:
        """Make ``specs`` the whole backend set in one write (ids kept where possible)."""
        with self.store.transaction(actor.name) as tx:
            require_write(tx, actor, project)
            proxy = resolve_proxy(tx, project, ref)
            wanted = build_backends(specs, proxy.backend_port, actor.source, self.backend_policy)
            merged = merge_backends(proxy.backends, wanted)
            for old in proxy.backends:
                tx.delete_backend(old.id)
            for backend in merged:
                tx.insert_backend(proxy.id, backend)
            tx.touch_proxy(proxy.id)
            tx.record(
                kind="backend",
                action="replace",
                object_id=proxy.id,
                project=project,
                before={"backends": proxy.backends},
                after={"backends": merged},
                proxy_id=proxy.id,
            )
            stored = resolve_proxy(tx, project, proxy.id).backends
        return stored

    def update_backend(
        self,
        actor: Actor,
        project: str,
        ref: str,
        backend_ref: str,
        *,
        weight: int | None = None,
        backup: bool | None = None,
    ) -> Backend:
        """Change weight (0 drains) and/or backup of one backend."""

        def change(tx: Transaction, proxy: Proxy) -> tuple[str, Backend | None, Backend]:
            before = find_backend(proxy, backend_ref)
            after = dataclasses.replace(
                before,
                weight=before.weight if weight is None else validation.weight(weight),
                backup=before.backup if backup is None else backup,
            )
            tx.update_backend(proxy.id, after)
            return "update", before, after

        return self._change(actor, project, ref, change)

    def remove_backend(self, actor: Actor, project: str, ref: str, backend_ref: str) -> None:
        def change(tx: Transaction, proxy: Proxy) -> tuple[str, Backend | None, Backend]:
            before = find_backend(proxy, backend_ref)
            tx.delete_backend(before.id)
            return "delete", before, before

        self._change(actor, project, ref, change)

    def _change(
        self,
        actor: Actor,
        project: str,
        ref: str,
        change: Callable[[Transaction, Proxy], tuple[str, Backend | None, Backend]],
    ) -> Backend:
        """Run one backend change in a write and log it against the proxy."""
        with self.store.transaction(actor.name) as tx:
            require_write(tx, actor, project)
            proxy = resolve_proxy(tx, project, ref)
            action, before, after = change(tx, proxy)
            tx.touch_proxy(proxy.id)
            tx.record(
                kind="backend",
                action=action,
                object_id=after.id,
                project=project,
                before=before,
                after=None if action == "delete" else after,
                proxy_id=proxy.id,
            )
        return after
