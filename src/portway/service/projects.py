"""Projects (tenants): admin-only create/list/delete, and the audit trail per project."""

from __future__ import annotations

from portway.errors import ConflictError, ValidationError
from portway.model import Change, Project
from portway.model.node import Node
from portway.service import validation
from portway.service.auth import Actor, project_not_found, require_admin, require_read
from portway.service.base import ServiceBase
from portway.store import Reader

MAX_CHANGES = 1000


class ProjectOps(ServiceBase):
    def create_project(self, actor: Actor, name: str) -> Project:
        """Create project ``name`` (admin only); 409 if it exists."""
        with self._write(actor) as tx:
            name = validation.project_name(name)
            if tx.get_project(name) is not None:
                raise ConflictError(f"project {name} already exists", field="name")
            tx.insert_project(Project(name=name))
            created = tx.get_project(name)
            tx.record(kind="project", action="create", object_id=name, project=name, after=created)
        assert created is not None
        return created

    def list_projects(self, actor: Actor) -> list[Project]:
        require_admin(actor)
        return self._read(Reader.list_projects)

    def list_nodes(self, actor: Actor) -> list[Node]:
        """The nodes of the tier as each last reported itself (admin)."""
        require_admin(actor)
        return self._read(Reader.list_nodes)

    def get_project(self, actor: Actor, name: str) -> Project:
        def query(reader: Reader) -> Project:
            require_read(reader, actor, name)
            found = reader.get_project(name)
            if found is None:
                raise project_not_found(name)
            return found

        return self._read(query)

    def delete_project(self, actor: Actor, name: str) -> None:
        """Delete an empty project (admin only); its tokens and zones go with it."""
        with self._write(actor) as tx:
            before = tx.get_project(name)
            if before is None:
                raise project_not_found(name)
            if tx.count_proxies(name):
                raise ConflictError(f"project {name} still has proxies; delete them first")
            tx.delete_project(name)
            tx.record(kind="project", action="delete", object_id=name, project=name, before=before)

    def list_changes(
        self, actor: Actor, project: str, *, since: int = 0, limit: int = 100
    ) -> list[Change]:
        """The project's audit trail after revision ``since``, newest first."""
        if not 1 <= limit <= MAX_CHANGES:
            raise ValidationError(f"limit must be 1 to {MAX_CHANGES}", field="limit")
        if since < 0:
            raise ValidationError("since must not be negative", field="since")

        def query(reader: Reader) -> list[Change]:
            require_read(reader, actor, project)
            return reader.list_changes(project=project, since=since, limit=limit)

        return self._read(query)
