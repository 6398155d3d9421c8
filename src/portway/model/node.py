"""A Portway node of a tier, as it last reported itself to the shared store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# A node that has missed this many reports in a row is shown as lost.
MISSED_REPORTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    name: str
    addresses: tuple[str, ...]  # where its data plane listens (host:port)
    version: str  # Portway's version on that node
    applied_revision: int  # the snapshot version its data plane serves
    digest: str  # of that snapshot: every node in step shows the same one
    started_at: datetime
    last_seen: datetime
    report_interval: float  # seconds between its reports

    def lost(self, now: datetime) -> bool:
        return now - self.last_seen > timedelta(seconds=self.report_interval * MISSED_REPORTS)
