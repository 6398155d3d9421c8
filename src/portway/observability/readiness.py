"""Whether this node may be sent traffic: the one rule behind ``/healthz``.

keepalived's check script and outside load balancers ask ``/healthz`` before they send a
node traffic, so it says ready only when the node would serve what the store holds: every
serving process accepts connections and has applied the snapshot built from the newest
store revision this node has heard of (its own commits, other nodes' notifications, its
poll). Otherwise it says which of the steps is behind.

A node that applies changes as they come is always a few milliseconds behind some write:
on a busy tier, a strict "caught up" would fail a fraction of all checks on every node at
once, and keepalived would move the address for nothing. A node is behind, for this rule,
only once the oldest change it has heard of and not yet applied has waited longer than
``LAG_ALLOWED``; a node that has not applied its first snapshot is never ready.

A store that cannot be reached does not make the node unready: every node keeps serving
its last snapshot then, and taking them all out of rotation would turn a store outage
into a traffic outage. The API's writes answer 503 instead.
"""

from __future__ import annotations

from dataclasses import dataclass

# Seconds a heard change may wait to be applied before the node says it is behind: well
# above a busy node's propagation (p99 under 0.4 s in bench churn under wrk), well below
# keepalived's reaction (two failed checks a second apart).
LAG_ALLOWED = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Readiness:
    store: int  # the newest store revision this node has heard of
    built: int  # the version of the newest snapshot built
    applied: int  # the version every serving process has applied; 0 while none serves
    waited: float = float("inf")  # seconds the oldest unapplied change has waited

    @property
    def reasons(self) -> tuple[str, ...]:
        if self.applied == 0:
            return ("the data plane is not serving yet",)
        if self.waited <= LAG_ALLOWED:
            return ()
        out = []
        if self.applied < self.built:
            out.append(f"the data plane serves revision {self.applied}, not yet {self.built}")
        if self.built < self.store:
            out.append(f"the store is at revision {self.store}, the newest snapshot {self.built}")
        return tuple(out)

    @property
    def ready(self) -> bool:
        return not self.reasons

    def as_json(self) -> dict[str, object]:
        reasons = self.reasons
        return {
            "status": "ok" if not reasons else "not-ready",
            "reasons": list(reasons),
            "revision": {"store": self.store, "built": self.built, "applied": self.applied},
        }
