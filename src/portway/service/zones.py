"""DNS zones, and the rule for who may claim which hostname.

While no zone exists, any valid hostname may be claimed first come, first served. Once
zones exist, the hostname must be a zone itself or one label under one (``in_zone``), and
the most specific such zone decides: it must be owned by the claiming project, or shared
(and then the hostname may be neither a wildcard, which would capture other tenants'
names, nor the zone's own name).

A hostname belongs to one project (issue 7). The one exception is a shared host: a zone
with ``shared_host`` that an admin creates for exactly one hostname, which every project
may then route under path prefixes of its own (``proxies`` refuses a prefix that would
nest inside, or around, another project's). A shared host governs only its own name, so
it neither opens the names below it nor, alone, turns the zone rules on.
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
    all_zones = reader.list_zones()
    if any(z.shared_host and z.name == hostname for z in all_zones):
        return  # the operator shares this hostname by path
    others = reader.hostname_projects(hostname) - {project}
    if others:
        raise ConflictError(
            f"hostname {hostname} is already used by another project", field="hostname"
        )
    zones = [z for z in all_zones if not z.shared_host]
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
    if zone.shared and hostname == zone.name:
        raise ForbiddenError(
            f"the name of shared zone {zone.name} itself is not for a project", field="hostname"
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
        shared_host: bool = False,
        default: bool = False,
        deprecated: bool = False,
    ) -> Zone:
        """Add a zone (admin only): shared by all, owned by ``project``, or a shared host."""
        require_admin(actor)  # before any rule on the input: a tenant learns nothing
        if shared_host and project is not None:
            raise ValidationError("a shared host belongs to no project", field="project")
        if shared_host and shared:
            raise ValidationError(
                "a shared host is one hostname, not a shared zone: set one of the two",
                field="shared",
            )
        zone = Zone(
            name=normalize_hostname(name, field="name", wildcard_ok=False),
            project=project,
            shared=shared,
            shared_host=shared_host,
            default=default,
            deprecated=deprecated,
        )
        with self._write(actor) as tx:
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
        """All zones for an admin; otherwise the shared ones (hosts too) and the caller's own."""
        zones = self._read(Reader.list_zones)
        if actor.is_admin:
            return zones
        return [
            z
            for z in zones
            if z.shared or z.shared_host or (z.project and z.project == actor.project)
        ]

    def delete_zone(self, actor: Actor, name: str) -> None:
        with self._write(actor) as tx:
            before = next((z for z in tx.list_zones() if z.name == name.lower()), None)
            if before is None:
                raise NotFoundError(f"zone {name} not found", field="zone")
            if before.shared_host and len(tx.hostname_projects(before.name)) > 1:
                raise ConflictError(
                    f"shared host {before.name} is routed by several projects", field="zone"
                )
            tx.delete_zone(before.name)
            tx.record(
                kind="zone",
                action="delete",
                object_id=before.name,
                project=before.project,
                before=before,
            )
