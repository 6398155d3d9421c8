"""Toolforge tools: a tool's routes as one project, one proxy and one backend per pattern.

A tool is the project named like it, with one proxy ``<tool>.<canonical-domain>`` (path
prefix "/", ``toolforge`` set) created on its first registration; each registered
pattern is a backend of that proxy carrying the pattern. A register or unregister is one
transaction with one change-log row (kind ``tool``); a resync writes up to
``RESYNC_BATCH`` tools per transaction, still one row (and one revision) per tool. Rows
carry the source's actor, whose name is stamped on what it creates.

Rules, in the order a registration applies them:

1. The tool's name is a project name and the first label of its hostname.
2. The destination passes the same checks as an API backend (``build_backend``: the
   address grammar and the operator's backend policy, so no metadata service and no
   Portway listener).
3. The hostname is claimed as any proxy's is (zones, another project's hostname); a
   proxy of that hostname that is not a tool's is never taken over.
4. One destination per pattern: registering a pattern again replaces its destination.
   A pattern set by another source (the API, the other Toolforge source) is refused:
   each source owns only what it created.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass

from portway.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from portway.model import Backend, Project, Proxy, TlsSettings, ToolSettings
from portway.service import validation
from portway.service.auth import Actor, require_admin
from portway.service.backends import BackendSpec, build_backend, check_new_backend
from portway.service.base import ServiceBase, new_id
from portway.service.hostnames import ProxyRows
from portway.service.proxies import check_route_free
from portway.service.quota_check import check_tool_proxy
from portway.service.zones import check_claim
from portway.store import Reader, Transaction

CHANGE_KIND = "tool"
# Tools per resync transaction. A SQLite commit (its fsync) cost ~20 ms on the shared
# machine, more than a tool's dozen statements: a first list of 10 000 Services took
# 251-287 s as 10 000 transactions and 70 s in batches of 250 (bench/portway_bench/
# toolforge_resync.py). A few hundred keeps each transaction (the store's one write
# lock) short, so a registration over 8282 waits a fraction of a second at most.
RESYNC_BATCH = 250
_NO_TLS = TlsSettings()
# One tool's refusals; a resync skips that tool and applies the others.
_REFUSALS = (ValidationError, ConflictError, ForbiddenError, NotFoundError)


@dataclass(frozen=True, kw_only=True, slots=True)
class ResyncResult:
    changed: int  # tools whose routes changed
    refused: tuple[tuple[str, str], ...]  # (tool, why) of the tools left as they were


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolRouteSpec:
    """``pattern`` of ``tool`` (on ``hostname``) to ``address``:``port`` (over TLS when
    ``tls``: an ``https://`` destination)."""

    tool: str
    hostname: str
    pattern: str
    address: str
    port: int
    tls: bool = False
    canonical: bool = False


class ToolOps(ServiceBase):
    def register_tool_route(
        self, actor: Actor, spec: ToolRouteSpec, *, tls: TlsSettings = _NO_TLS
    ) -> Backend:
        """Add or replace one route of a tool (its project and proxy made if missing);
        ``tls`` applies to a proxy this call creates."""
        require_admin(actor)  # a source acts for every tool; tools never call this
        with self._proxy_write(actor) as rows:  # admins only: a source acts for every tool
            tx = rows.tx
            before = _tool_proxy(tx, spec, actor, tls)
            proxy, backend = self._with_route(before, spec, actor)
            _commit(rows, "register", before, proxy)
        return backend

    def unregister_tool_route(self, actor: Actor, tool: str, hostname: str, pattern: str) -> None:
        """Remove the route of ``pattern`` and the tool's canonical mark; a route that is
        not there is not an error (the mark still goes)."""
        require_admin(actor)
        if self._read(lambda r: _existing_tool_proxy(r, tool, hostname)) is None:
            return  # no such tool: nothing to write (nor a change row to spam the log)
        with self._proxy_write(actor) as rows:  # admins only: a source acts for every tool
            tx = rows.tx
            before = _existing_tool_proxy(tx, tool, hostname)
            if before is None:  # deleted in between
                tx.record(kind=CHANGE_KIND, action="unregister", object_id=hostname, project=None)
                return
            kept = []
            for backend in before.backends:
                if backend.pattern == pattern:
                    _check_owner(backend, actor, tool)
                else:
                    kept.append(backend)
            after = dataclasses.replace(
                before, backends=tuple(kept), toolforge=ToolSettings(canonical=False)
            )
            _commit(rows, "unregister", before, after)

    def resync_tool_routes(
        self,
        actor: Actor,
        specs: Collection[ToolRouteSpec],
        *,
        tls: TlsSettings = _NO_TLS,
        batch: int = RESYNC_BATCH,
    ) -> ResyncResult:
        """Make the routes ``actor``'s source made exactly ``specs``; nobody else's
        routes change. The tools that change are written ``batch`` per transaction, each
        with its own change-log row (the change feed names each proxy, which is what the
        reconciler rebuilds); a tool whose routes are refused (rules 1-4) keeps what it
        had, writes nothing and is listed in the result, the others are applied. A
        transaction that fails for any other reason (the store) rolls back its whole
        batch, and the error propagates: the next resync starts again from the store."""
        require_admin(actor)
        wanted = _by_hostname(specs)
        have = self._read(lambda r: _source_routes(r, actor.source))
        work: list[tuple[str, list[ToolRouteSpec]]] = [
            (hostname, []) for hostname in sorted(have.keys() - wanted.keys())
        ]
        # An idle relist of an unchanged cluster writes nothing.
        work += [(h, g) for h, g in wanted.items() if have.get(h) != _wanted_routes(g)]
        changed = 0
        refused: list[tuple[str, str]] = []
        size = max(1, batch)
        for start in range(0, len(work), size):
            changed += self._resync_batch(actor, work[start : start + size], tls, refused)
        return ResyncResult(changed=changed, refused=tuple(refused))

    def _resync_batch(
        self,
        actor: Actor,
        work: list[tuple[str, list[ToolRouteSpec]]],
        tls: TlsSettings,
        refused: list[tuple[str, str]],
    ) -> int:
        """One transaction for the tools of ``work``; returns how many changed (the
        refused are appended to ``refused``)."""
        changed = 0
        try:
            with self._proxy_write(actor) as rows:  # admins only: a source acts for every tool
                tx = rows.tx
                for hostname, group in work:
                    try:
                        change = self._resynced(tx, actor, hostname, group, tls)
                    except _REFUSALS as exc:  # raised before the tool wrote anything
                        refused.append((hostname.partition(".")[0], exc.message))
                        continue
                    if change is None:
                        continue
                    if changed:
                        tx.next_change()
                    _commit(rows, "resync", *change)
                    changed += 1
                if not changed:
                    raise _NothingWritten  # every tool refused or gone: no empty revision
        except _NothingWritten:
            pass
        return changed

    def _resynced(
        self,
        tx: Transaction,
        actor: Actor,
        hostname: str,
        group: list[ToolRouteSpec],
        tls: TlsSettings,
    ) -> tuple[Proxy, Proxy] | None:
        """(before, after) of one tool whose routes made by ``actor`` become exactly
        ``group``; None when there is nothing left to remove. Checks only: nothing is
        written, so a refusal (raised) leaves the batch's other tools as they are."""
        if group:
            before = _tool_proxy(tx, group[0], actor, tls)
        else:
            found = _existing_tool_proxy(tx, hostname.partition(".")[0], hostname)
            if found is None:  # deleted since the read: nothing left to remove
                return None
            before = found
        others = tuple(b for b in before.backends if b.source != actor.source)
        after = dataclasses.replace(before, backends=others)
        for spec in group:
            after, _ = self._with_route(after, spec, actor)
        check_tool_proxy(tx, self.quota_defaults, before, after)  # refused before any write
        return before, after

    def _with_route(self, proxy: Proxy, spec: ToolRouteSpec, actor: Actor) -> tuple[Proxy, Backend]:
        """``proxy`` with ``spec``'s route added or replaced (same destination: kept)."""
        built = build_backend(
            BackendSpec(address=spec.address, port=spec.port, tls=spec.tls, pattern=spec.pattern),
            proxy.backend_port,
            actor.source,
            self.backend_policy,
            field="destination",
        )
        others = []
        for backend in proxy.backends:
            if backend.pattern != built.pattern:
                others.append(backend)
                continue
            _check_owner(backend, actor, spec.tool)
            if (backend.address, backend.port, backend.tls) == (
                built.address,
                built.port,
                built.tls,
            ):
                built = backend  # the same route again: nothing changes, ids stay
        narrowed = dataclasses.replace(proxy, backends=tuple(others))
        if built not in proxy.backends:
            check_new_backend(narrowed, built)
        canonical = spec.canonical or (proxy.toolforge is not None and proxy.toolforge.canonical)
        after = dataclasses.replace(
            proxy, backends=(*others, built), toolforge=ToolSettings(canonical=canonical)
        )
        return after, built


def _tool_proxy(
    tx: Transaction,
    spec: ToolRouteSpec,
    actor: Actor,
    tls: TlsSettings,
) -> Proxy:
    """The tool's proxy, or a new one (revision 0, not stored yet) once every check
    passed; nothing is written (``_store_proxy`` creates the project when missing)."""
    found = _existing_tool_proxy(tx, spec.tool, spec.hostname)
    if found is not None:
        return found
    project = validation.project_name(spec.tool, field="tool")
    proxy = validation.proxy(
        Proxy(
            id=new_id(),
            project=project,
            hostname=spec.hostname,
            tls=tls,
            toolforge=ToolSettings(),
            source=actor.source,
        )
    )
    check_claim(tx, project, proxy.hostname)
    check_route_free(tx, proxy)
    return proxy


def _existing_tool_proxy(reader: Reader, tool: str, hostname: str) -> Proxy | None:
    for proxy in reader.find_proxies(hostname=hostname):
        if proxy.path_prefix != "/" or proxy.listen_port is not None:
            continue  # a tool's proxy is the hostname's root on the shared listeners
        if proxy.project != tool or proxy.toolforge is None:
            raise ConflictError(
                f"hostname {hostname} is routed by a proxy that is not tool {tool}'s",
                field="tool",
            )
        return proxy
    return None


def _check_owner(backend: Backend, actor: Actor, tool: str) -> None:
    if backend.source != actor.source:
        raise ConflictError(
            f"route {backend.pattern!r} of tool {tool} was made by {backend.source};"
            f" {actor.source} may not change it",
            field="route",
        )


class _NothingWritten(Exception):
    """Rolls back a resync transaction that recorded no change."""


def _commit(rows: ProxyRows, action: str, before: Proxy, after: Proxy) -> None:
    """Store ``after`` over ``before`` and record the change: every tool write ends here."""
    _store_proxy(rows, before, after)
    rows.tx.record(
        kind=CHANGE_KIND,
        action=action,
        object_id=after.id,
        project=after.project,
        before=None if before.revision == 0 else before,  # revision 0: created now
        after=after,
        proxy_id=after.id,
    )


def _store_proxy(rows: ProxyRows, before: Proxy, after: Proxy) -> None:
    """Store ``after`` over ``before`` (revision 0: a proxy this call creates, and its
    project when that is new too); its hostname gets DNS records as any proxy's."""
    tx = rows.tx
    if before.revision == 0:
        if tx.get_project(after.project) is None:
            tx.insert_project(Project(name=after.project))
        rows.insert(after)
        return
    if after.toolforge != before.toolforge:
        rows.update(before, after)
    else:
        tx.touch_proxy(after.id)
    old = {b.id for b in before.backends}
    new = {b.id for b in after.backends}
    for backend in before.backends:
        if backend.id not in new:
            tx.delete_backend(backend.id)
    for backend in after.backends:
        if backend.id not in old:
            tx.insert_backend(after.id, backend)


def _by_hostname(specs: Collection[ToolRouteSpec]) -> dict[str, list[ToolRouteSpec]]:
    grouped: dict[str, list[ToolRouteSpec]] = {}
    for spec in specs:
        grouped.setdefault(spec.hostname, []).append(spec)
    return grouped


_Routes = frozenset[tuple[str | None, str, int, bool]]


def _source_routes(reader: Reader, source: str) -> dict[str, _Routes]:
    """Tool hostname → the routes ``source`` made there (tools with none left out)."""
    found: dict[str, _Routes] = {}
    for proxy in reader.load_proxies(timestamps=False):
        if proxy.toolforge is None:
            continue
        mine = frozenset(
            (b.pattern, b.address, b.port, b.tls) for b in proxy.backends if b.source == source
        )
        if mine:
            found[proxy.hostname] = mine
    return found


def _wanted_routes(group: list[ToolRouteSpec]) -> _Routes:
    try:
        return frozenset((s.pattern, validation.address(s.address), s.port, s.tls) for s in group)
    except ValidationError:
        return frozenset()  # never equal to what is stored: the write says why
