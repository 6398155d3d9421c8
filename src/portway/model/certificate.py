"""Tenant certificates: a chain and its private key, with the facts read from the leaf."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Certificate:
    """An uploaded certificate. ``key_pem`` travels to the data plane (in snapshots) but
    never out through the API or into the change log."""

    id: str
    project: str
    name: str
    chain_pem: str
    key_pem: str = ""
    names: tuple[str, ...] = ()  # DNS names the leaf covers, lower-case, sorted
    not_after: datetime | None = None
    fingerprint: str = ""  # SHA-256 of the leaf, hex
    created_at: datetime | None = None

    def public(self) -> dict[str, object]:
        """Everything but the key: what the change log may record."""
        return {
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "names": list(self.names),
            "not_after": self.not_after,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at,
        }
