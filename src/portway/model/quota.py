"""Per-project quotas: how much of the shared tier one project may hold.

``Quota``'s fields are the one definition of the quotas: their names (``QUOTA_NAMES``),
the API's schemas, the store's columns and the node-wide defaults' settings derive from
them. A value is a limit (0 and up), ``UNLIMITED`` (-1, as Octavia writes it), or None in
a project's own quota: the node-wide default applies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

UNLIMITED = -1


@dataclass(frozen=True, kw_only=True, slots=True)
class Quota:
    """Limits of one project (or the node's defaults)."""

    proxies: int | None = None
    backends_per_proxy: int | None = None
    certificates: int | None = None
    cache_bytes: int | None = None  # the memory its proxies' caches may take together

    def over(self, defaults: Quota) -> Quota:
        """This quota with the fields it leaves unset taken from ``defaults``."""
        return Quota(
            **{
                name: value
                if (value := getattr(self, name)) is not None
                else getattr(defaults, name)
                for name in QUOTA_NAMES
            }
        )

    def allows(self, name: str, in_use: int) -> bool:
        """Whether ``in_use`` objects of quota ``name`` fit (None or -1: no limit)."""
        limit = getattr(self, name)
        return limit is None or limit == UNLIMITED or in_use <= limit


QUOTA_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Quota))
NO_LIMITS = Quota(**{name: UNLIMITED for name in QUOTA_NAMES})


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheLimits:
    """The ``cache_bytes`` quotas as the data plane needs them (snapshots carry it): the
    node's default and the projects whose own quota sets a value. Each worker keeps a
    project's stored bytes under its limit (cache/store.py ``ProjectCache``)."""

    default: int = UNLIMITED
    own: Mapping[str, int] = field(default_factory=dict)

    def of(self, project: str) -> int | None:
        """The project's limit in bytes; None: unlimited."""
        limit = self.own.get(project, self.default)
        return None if limit == UNLIMITED else limit
