"""Snapshots: the complete, versioned configuration a data plane applies at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from portway.model import Certificate
from portway.model.quota import CacheLimits
from portway.router.table import RouteTable


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the data plane needs, consistent as of store revision ``version``.

    The data plane swaps a whole Snapshot in one assignment; it never reads the store.
    ``certificates`` holds, by id, the certificates (chain and key) that the proxies of
    ``routes`` attach; a snapshot whose certificates did not change shares the previous
    snapshot's mapping object, so publishers can tell by identity whether to send it.
    """

    version: int
    routes: RouteTable = field(default_factory=lambda: RouteTable.build(()))
    built_at: float = 0.0
    certificates: Mapping[str, Certificate] = field(default_factory=dict)
    # The projects' cache_bytes quotas, which each worker's caches hold to.
    cache_limits: CacheLimits = field(default_factory=CacheLimits)
