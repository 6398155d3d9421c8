"""``portway import dynamicproxy``: the old dynamicproxy's mappings made Portway's.

Two sources, both read into ``OldMapping`` rows:

- its database (SQLite file or any SQLAlchemy URL): the tables ``routes`` (``id``,
  ``domain`` and the project: a ``project`` text column, or ``project_id`` naming a row
  of ``projects``) and ``backends`` (``url``, ``route_id``); the singular spellings of
  Flask-SQLAlchemy (``route``, ``backend``, ``project``) are read the same way;
- its ``GET /mapping`` answer (``{"routes": [{"domain", "backends"}]}``) for one project.

Each mapping goes through the service the way the dynamicproxy API's PUT does (the same
rules, the URL text kept, source ``dynamicproxy``), as an actor that names the import in
the change log. Per mapping: ``create`` (one transaction with its backends), ``update``
(its backends replaced, one transaction), ``unchanged``, or ``failed`` with the reason;
a failed mapping changes nothing. A dry run parses and compares without writing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portway.compat import dynamicproxy as dp
from portway.errors import ConflictError, MalformedError, NotFoundError, PortwayError
from portway.model import Role
from portway.service import Actor, Service

ACTOR = f"portway import {dp.SOURCE}"  # the change log's actor of what the import writes
_TABLES = {"routes": ("routes", "route"), "backends": ("backends", "backend")}
_PROJECTS = ("projects", "project")


@dataclass(frozen=True, slots=True)
class OldMapping:
    """One mapping as the old system held it; ``where`` names its row for the report."""

    project: str
    domain: object
    backends: object  # a tuple of URL texts from a database; anything from JSON
    where: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the import did (or, in a dry run, would do) with one mapping."""

    mapping: OldMapping
    action: str  # create, update, unchanged, failed
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def line(self, dry_run: bool) -> str:
        m = self.mapping
        verb = f"would {self.action}" if dry_run and self.action in ("create", "update") else None
        head = f"{verb or self.action} {m.project} {m.domain}"
        if self.failed:
            return f"{head}: {self.reason} ({m.where})"
        count = len(m.backends) if isinstance(m.backends, tuple | list) else 0
        return f"{head} ({count} backends)"


# -- reading ----------------------------------------------------------------------------


def read_database(url: str) -> list[OldMapping]:
    """The mappings in the old database at ``url`` (read only)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return _read_tables(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise MalformedError(f"cannot read the dynamicproxy database: {exc}") from None
    finally:
        engine.dispose()


def _table(meta: sa.MetaData, names: Sequence[str]) -> sa.Table | None:
    return next((meta.tables[n] for n in names if n in meta.tables), None)


def _read_tables(conn: sa.Connection) -> list[OldMapping]:
    meta = sa.MetaData()
    meta.reflect(conn)
    routes, backends = (_table(meta, _TABLES[k]) for k in ("routes", "backends"))
    if routes is None or backends is None:
        raise MalformedError(
            "not a dynamicproxy database: no routes and backends tables "
            f"(found: {', '.join(sorted(meta.tables)) or 'none'})"
        )
    urls: dict[Any, list[object]] = {}
    for row in conn.execute(sa.select(backends).order_by(backends.c.id)).mappings():
        urls.setdefault(row["route_id"], []).append(row["url"])
    names = _project_names(conn, meta, routes)
    found = []
    for row in conn.execute(sa.select(routes).order_by(routes.c.id)).mappings():
        project = names(row)
        where = f"{routes.name} row id={row['id']}"
        backends_of = tuple(urls.get(row["id"], ()))
        found.append(
            OldMapping(project=project, domain=row["domain"], backends=backends_of, where=where)
        )
    return found


def _project_names(conn: sa.Connection, meta: sa.MetaData, routes: sa.Table) -> Any:
    """How a routes row names its project: its ``project`` column, or ``project_id``
    looked up in the projects table (its ``name``)."""
    if "project" in routes.c:
        return lambda row: str(row["project"])
    projects = _table(meta, _PROJECTS)
    if "project_id" not in routes.c or projects is None:
        raise MalformedError("the routes table has neither project nor project_id")
    by_id = {r["id"]: str(r["name"]) for r in conn.execute(sa.select(projects)).mappings()}
    return lambda row: by_id.get(row["project_id"], f"<unknown project_id {row['project_id']}>")


def read_mapping_json(text: str, project: str) -> list[OldMapping]:
    """The mappings in a ``GET /mapping`` answer of ``project``."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise MalformedError(f"the /mapping output is not JSON: {exc}") from None
    routes = body.get("routes") if isinstance(body, dict) else None
    if not isinstance(routes, list):
        raise MalformedError('the /mapping output has no "routes" list')
    found = []
    for i, route in enumerate(routes):
        entry = route if isinstance(route, dict) else {}
        backends = entry.get("backends")
        found.append(
            OldMapping(
                project=project,
                domain=entry.get("domain"),
                backends=tuple(backends) if isinstance(backends, list) else backends,
                where=f"routes[{i}]",
            )
        )
    return found


# -- importing --------------------------------------------------------------------------


class Importer:
    """Applies old mappings through ``service``, one transaction per mapping."""

    def __init__(self, service: Service, *, dry_run: bool = False, origin: str = "") -> None:
        self.service = service
        self.dry_run = dry_run
        name = f"{ACTOR} ({origin})" if origin else ACTOR
        self.actor = Actor(name=name, role=Role.ADMIN, project=None, source=dp.SOURCE)

    def run(self, mappings: Iterable[OldMapping]) -> list[Outcome]:
        return [self.one(m) for m in mappings]

    def one(self, mapping: OldMapping) -> Outcome:
        try:
            return Outcome(mapping, self._apply(mapping))
        except PortwayError as exc:
            return Outcome(mapping, "failed", exc.message)

    def _apply(self, mapping: OldMapping) -> str:
        backends = mapping.backends
        if isinstance(backends, tuple):
            backends = list(backends)
        wanted = dp.parse_request({"domain": mapping.domain, "backends": backends})
        # Compared as sets of URL texts: the store does not keep the old system's order.
        urls = sorted(b.url or "" for b in wanted.backends)
        existing = self._existing(mapping.project, wanted.domain)
        if existing is not None and sorted(dp.mapping_out(existing)["backends"]) == urls:
            return "unchanged"
        if self.dry_run:
            return "create" if existing is None else "update"
        if existing is None:
            with self._new_project_undone_on_failure(mapping.project):
                self.service.add_mapping(
                    self.actor,
                    mapping.project,
                    wanted.domain,
                    wanted.backends,
                    dp.draft(wanted.domain),
                )
            return "create"
        self.service.replace_mapping(
            self.actor, mapping.project, wanted.domain, wanted.domain, wanted.backends
        )
        return "update"

    def _existing(self, project: str, domain: str) -> Any:
        try:
            return self.service.get_mapping(self.actor, project, domain)
        except NotFoundError:
            return None

    @contextlib.contextmanager
    def _new_project_undone_on_failure(self, project: str) -> Iterator[None]:
        """A project the old system had but Portway lacks is made for the mapping, and
        removed again if the mapping fails: a failed mapping leaves nothing behind."""
        try:
            self.service.get_project(self.actor, project)
            made = False
        except NotFoundError:
            with contextlib.suppress(ConflictError):
                self.service.create_project(self.actor, project)
            made = True
        try:
            yield
        except PortwayError:
            if made:
                with contextlib.suppress(PortwayError):
                    self.service.delete_project(self.actor, project)
            raise


def summary(outcomes: Sequence[Outcome]) -> Mapping[str, int]:
    """How many mappings ended in each action."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    return counts
