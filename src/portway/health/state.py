"""Per-backend health as a pure state machine: ``rise`` successes in a row bring a backend
up, ``fall`` failures in a row take it down (HAProxy's semantics). A backend starts
``unknown`` and is routed to until its first verdict, so that adding a backend or
restarting Portway never blackholes traffic while the first probes run."""

from __future__ import annotations

from dataclasses import dataclass, replace

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"
DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class Health:
    status: str = UNKNOWN
    successes: int = 0
    failures: int = 0
    last_check: float | None = None
    last_error: str | None = None

    @property
    def routable(self) -> bool:
        return self.status != DOWN


def observe(
    health: Health, ok: bool, *, rise: int, fall: int, at: float, error: str | None
) -> Health:
    """The state after one probe result."""
    if ok:
        successes = health.successes + 1
        status = UP if successes >= rise or health.status == UP else health.status
        return replace(
            health, status=status, successes=successes, failures=0, last_check=at, last_error=None
        )
    failures = health.failures + 1
    status = DOWN if failures >= fall else health.status
    return replace(
        health, status=status, successes=0, failures=failures, last_check=at, last_error=error
    )
