"""Snapshots: the complete, versioned configuration a data plane applies at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from portway.router.table import RouteTable


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the data plane needs, consistent as of store revision ``version``.

    The data plane swaps a whole Snapshot in one assignment; it never reads the store.
    """

    version: int
    routes: RouteTable = field(default_factory=lambda: RouteTable.build(()))
    built_at: float = 0.0
