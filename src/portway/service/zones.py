"""DNS zones, and the rule for who may claim which hostname.

While no zone exists, any valid hostname may be claimed first come, first served. Once
zones exist, the most specific zone containing the hostname decides: it must be owned
by the claiming project, or shared (and then the hostname may not be a wildcard, which
would capture other tenants' names).
"""

from __future__ import annotations

from portway.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from portway.model import Zone, normalize_hostname
from portway.model.hostname import in_zone
from portway.service.auth import Actor, require_admin
from portway.service.base import ServiceBase
from portway.store import Reader


def check_claim(reader: Reader, project: str, hostname: str) -> None:
    """Raise unless ``project`` may route ``hostname`` (already normalised)."""
    others = reader.hostname_projects(hostname) - {project}
    if others:
        raise ConflictError(
            f"hostname {hostname} is already used by another project", field="hostname"
        )
    zones = reader.list_zones()
    if not zones:
        return
    matching = [z for z in zones if in_zone(hostname, z.name)]
    if not matching:
        raise ForbiddenError(
            f"hostname {hostname} is not in a zone this project may use", field="hostname"
        )
    zone = max(matching, key=lambda z: len(z.name))
    if zone.project == project:
        return
    if zone.shared and hostname.startswith("*."):
        raise ForbiddenError(
            f"wildcard hostnames are not allowed in shared zone {zone.name}", field="hostname"
        )
    if not zone.shared:
        raise ForbiddenError(
            f"hostname {hostname} is not in a zone this project may use", field="hostname"
        )


class ZoneOps(ServiceBase):
    def create_zone(
        self,
        actor: Actor,
        name: str,
        *,
        project: str | None = None,
        shared: bool = False,
        default: bool = False,
        deprecated: bool = False,
    ) -> Zone:
        """Add a zone (admin only): shared by all, or owned by ``project``."""
        require_admin(actor)
        zone = Zone(
            name=normalize_hostname(name, field="name", wildcard_ok=False),
            project=project,
            shared=shared,
            default=default,
            deprecated=deprecated,
        )
        with self.store.transaction(actor.name) as tx:
            if project is not None and tx.get_project(project) is None:
                raise ValidationError(f"project {project} does not exist", field="project")
            if any(z.name == zone.name for z in tx.list_zones()):
                raise ConflictError(f"zone {zone.name} already exists", field="name")
            tx.insert_zone(zone)
            tx.record(
                kind="zone", action="create", object_id=zone.name, project=project, after=zone
            )
        return zone

    def list_zones(self, actor: Actor) -> list[Zone]:
        """All zones for an admin; otherwise the shared ones and the caller's own."""
        zones = self._read(Reader.list_zones)
        if actor.is_admin:
            return zones
        return [z for z in zones if z.shared or (z.project and z.project == actor.project)]

    def delete_zone(self, actor: Actor, name: str) -> None:
        require_admin(actor)
        with self.store.transaction(actor.name) as tx:
            before = next((z for z in tx.list_zones() if z.name == name.lower()), None)
            if before is None:
                raise NotFoundError(f"zone {name} not found", field="zone")
            tx.delete_zone(before.name)
            tx.record(
                kind="zone",
                action="delete",
                object_id=before.name,
                project=before.project,
                before=before,
            )
