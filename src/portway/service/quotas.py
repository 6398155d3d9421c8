"""Quotas per project: admins read and set them (the rules: quota_check.py).

``cache_bytes`` bounds what the project's proxies' caches may hold together: its use is
the sum of their reservations (``CacheSettings.reserved_bytes``: ``max_bytes`` of each
enabled cache), held to the quota on every write like the others, and each worker's cache
keeps the project's stored bytes under it as well (``cache/store.py``).
"""

from __future__ import annotations

from portway.model.quota import QUOTA_NAMES, Quota
from portway.service.auth import Actor, project_not_found, require_admin
from portway.service.base import ServiceBase
from portway.service.quota_check import validated
from portway.store import Reader


class QuotaOps(ServiceBase):
    def get_quota(self, actor: Actor, project: str) -> tuple[Quota, Quota, dict[str, int]]:
        """(the project's own quota, the limits in force, each counted use); admins only."""
        require_admin(actor)

        def query(reader: Reader) -> tuple[Quota, Quota, dict[str, int]]:
            if reader.get_project(project) is None:
                raise project_not_found(project)
            own = reader.get_quota(project)
            use = {name: _use(reader, project, name) for name in QUOTA_NAMES}
            return own, own.over(self.quota_defaults), use

        return self._read(query)

    def set_quota(self, actor: Actor, project: str, quota: Quota) -> Quota:
        """Make ``quota`` the project's own (None fields: the node's default); admins."""
        quota = validated(quota)
        with self._write(actor) as tx:
            if tx.get_project(project) is None:
                raise project_not_found(project)
            before = tx.get_quota(project)
            tx.put_quota(project, quota)
            tx.record(
                kind="quota",
                action="set",
                object_id=project,
                project=project,
                before=before,
                after=quota,
            )
        return quota


def _use(reader: Reader, project: str, name: str) -> int:
    """A project's use of quota ``name``; backends_per_proxy: its largest proxy's."""
    if name != "backends_per_proxy":
        found = reader.quota_use(name, project)
        return 0 if found is None else found[1]
    sizes = [len(p.backends) for p in reader.find_proxies(project=project)]
    return max(sizes, default=0)
