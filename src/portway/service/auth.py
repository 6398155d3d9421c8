"""Who is calling (``Actor``) and the access rules every service call applies first.

Roles: an admin token with no project may touch every project; a member reads and
writes its own project; a reader only reads it. Another project's objects answer
404 with the same message as a missing project, so names are not leaked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from portway.errors import ForbiddenError, NotFoundError
from portway.model import Role
from portway.store import Reader


@dataclass(frozen=True, kw_only=True, slots=True)
class Actor:
    """The caller of a service method.

    ``name`` goes into the change log ("token:<id>" or a source's name); ``source`` is
    the provenance stamped on the proxies and backends it creates.
    """

    name: str
    role: Role
    project: str | None
    source: str = "api"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN and self.project is None

    @classmethod
    def system(cls, source: str, *, project: str | None = None) -> Actor:
        """An event source acting with full rights (e.g. "toolforge", "kubernetes")."""
        return cls(name=source, role=Role.ADMIN, project=project, source=source)


def hash_secret(secret: str) -> str:
    """Tokens are looked up by this hash; the secret itself is never stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise ForbiddenError("this action needs a service-wide admin token")


def project_not_found(project: str) -> NotFoundError:
    return NotFoundError(f"project {project} not found", field="project")


def require_read(reader: Reader, actor: Actor, project: str) -> None:
    """The project exists and ``actor`` may read it, else 404 (never revealing which)."""
    if not (actor.is_admin or actor.project == project):
        raise project_not_found(project)
    if reader.get_project(project) is None:
        raise project_not_found(project)


def require_write(reader: Reader, actor: Actor, project: str) -> None:
    require_read(reader, actor, project)
    if not actor.role.can_write:
        raise ForbiddenError("this token may only read")
