"""What a driver reports about a proxy it renders (pure values, shared by the drivers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """A rule a proxy breaks for a data plane. ``served`` False: left out; True: served
    without the feature ``field`` names."""

    proxy_id: str
    field: str
    message: str
    served: bool
