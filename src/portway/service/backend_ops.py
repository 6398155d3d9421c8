"""Service operations on a proxy's backends (rules in ``backends.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from portway.model import Backend, Proxy
from portway.service import validation
from portway.service.auth import Actor
from portway.service.backends import (
    BackendSpec,
    ProxyBackend,
    build_backend,
    build_backends,
    check_new_backend,
    find_backend,
    merge_backends,
)
from portway.service.base import ServiceBase
from portway.service.proxies import readable_proxy, resolve_proxy
from portway.store import Transaction

# One backend change inside a write: returns (action, backend before, backend after).
Edit = Callable[[Transaction, Proxy], tuple[str, Backend | None, Backend]]


class BackendOps(ServiceBase):
    def list_backends(self, actor: Actor, project: str, ref: str) -> tuple[Backend, ...]:
        return self._read(lambda reader: readable_proxy(reader, actor, project, ref).backends)

    def get_backend(self, actor: Actor, project: str, ref: str, backend_ref: str) -> ProxyBackend:
        """One backend of a proxy, by id or ``address:port``; 404 if there is none."""
        proxy = self._read(lambda reader: readable_proxy(reader, actor, project, ref))
        return ProxyBackend(proxy_id=proxy.id, backend=find_backend(proxy, backend_ref))

    def add_backend(self, actor: Actor, project: str, ref: str, spec: BackendSpec) -> ProxyBackend:
        """Associate one backend; 409 if that address:port is already there."""

        def edit(tx: Transaction, proxy: Proxy) -> tuple[str, Backend | None, Backend]:
            backend = build_backend(
                spec, proxy.backend_port, actor.source, self.backend_policy, field="backend"
            )
            check_new_backend(proxy, backend)
            tx.insert_backend(proxy.id, backend)
            return "create", None, backend

        return self._change(actor, project, ref, edit)

    def replace_backends(
        self, actor: Actor, project: str, ref: str, specs: Sequence[BackendSpec]
    ) -> Proxy:
        """Make ``specs`` the whole backend set in one write (ids kept where possible);
        returns the proxy as the write left it."""
        with self._write(actor, project) as tx:
            proxy = resolve_proxy(tx, project, ref)
            wanted = build_backends(specs, proxy.backend_port, actor.source, self.backend_policy)
            merged = merge_backends(proxy.backends, wanted)
            tx.delete_backends([old.id for old in proxy.backends])
            tx.insert_backends(proxy.id, merged)
            tx.touch_proxy(proxy.id)
            _record(
                tx, "replace", proxy, proxy.id, {"backends": proxy.backends}, {"backends": merged}
            )
            stored = resolve_proxy(tx, project, proxy.id)
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
    ) -> ProxyBackend:
        """Change weight (0 drains) and/or backup of one backend."""

        def edit(tx: Transaction, proxy: Proxy) -> tuple[str, Backend | None, Backend]:
            before = find_backend(proxy, backend_ref)
            after = dataclasses.replace(
                before,
                weight=before.weight if weight is None else validation.weight(weight),
                backup=before.backup if backup is None else backup,
            )
            tx.update_backend(proxy.id, after)
            return "update", before, after

        return self._change(actor, project, ref, edit)

    def remove_backend(self, actor: Actor, project: str, ref: str, backend_ref: str) -> None:
        def edit(tx: Transaction, proxy: Proxy) -> tuple[str, Backend | None, Backend]:
            before = find_backend(proxy, backend_ref)
            tx.delete_backend(before.id)
            return "delete", before, before

        self._change(actor, project, ref, edit)

    def _change(self, actor: Actor, project: str, ref: str, edit: Edit) -> ProxyBackend:
        """Run one backend change in a write and log it against the proxy."""
        with self._write(actor, project) as tx:
            proxy = resolve_proxy(tx, project, ref)
            action, before, after = edit(tx, proxy)
            tx.touch_proxy(proxy.id)
            _record(tx, action, proxy, after.id, before, None if action == "delete" else after)
        return ProxyBackend(proxy_id=proxy.id, backend=after)


def _record(
    tx: Transaction, action: str, proxy: Proxy, object_id: str, before: object, after: object
) -> None:
    """A backend change is logged against its proxy (the reconciler rebuilds that one)."""
    tx.record(
        kind="backend",
        action=action,
        object_id=object_id,
        project=proxy.project,
        before=before,
        after=after,
        proxy_id=proxy.id,
    )
