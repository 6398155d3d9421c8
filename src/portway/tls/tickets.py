"""Session-ticket keys shared by every worker of every node (pure: no I/O, no OpenSSL).

A TLS server encrypts the session state it hands a client (a ticket) with a key of its
own; a client that comes back with the ticket resumes without a full handshake only if
the server that gets it holds that key. So every serving process of the tier must hold
the same keys: they live in the store (``store/tickets.py``), and reach the workers with
the snapshots (``worker_messages.TicketKeysUpdate``).

The schedule, the same on every node because it is derived from the clock and the
rotation interval alone:

- time is cut into slots of ``interval`` seconds from the epoch; slot ``n``'s key starts
  encrypting at ``n * interval`` and stops when slot ``n + 1``'s key starts;
- a key is made one slot *before* it starts, so every node has fetched it by the time
  any node encrypts with it (a node that made a key and used it at once would hand out
  tickets the others cannot read until their next fetch);
- a key keeps decrypting for ``ACCEPT_INTERVALS`` more slots after it stops encrypting,
  then it is dropped: a ticket older than that gets a full handshake (which succeeds);
- a ticket decrypted with a key that no longer encrypts is replaced with one under the
  current key (OpenSSL's "renew").
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

NAME_BYTES: Final = 16  # OpenSSL's key_name, sent in clear in every ticket
SECRET_BYTES: Final = 32  # HMAC-SHA256 key and AES-256 key, each
ACCEPT_INTERVALS: Final = 2  # slots a key still decrypts after it stops encrypting
DEFAULT_ROTATION: Final = 3600.0  # seconds: --tls-ticket-rotation's default


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketKey:
    """One key: its public name, its two secrets, and when it encrypts and expires.

    The secrets never appear in a repr (so never in a log line or a traceback)."""

    name: bytes
    hmac_key: bytes = field(repr=False)
    aes_key: bytes = field(repr=False)
    starts_at: float  # epoch seconds: encrypts from here until the next key starts
    expires_at: float  # epoch seconds: decrypts until here

    def __post_init__(self) -> None:
        if len(self.name) != NAME_BYTES:
            raise ValueError(f"a ticket key name is {NAME_BYTES} bytes")
        if len(self.hmac_key) != SECRET_BYTES or len(self.aes_key) != SECRET_BYTES:
            raise ValueError(f"ticket key secrets are {SECRET_BYTES} bytes each")

    @classmethod
    def generate(cls, starts_at: float, expires_at: float) -> TicketKey:
        return cls(
            name=os.urandom(NAME_BYTES),
            hmac_key=os.urandom(SECRET_BYTES),
            aes_key=os.urandom(SECRET_BYTES),
            starts_at=starts_at,
            expires_at=expires_at,
        )

    def secret(self) -> bytes:
        """Both secrets as one value, for sealing in the store."""
        return self.hmac_key + self.aes_key

    @classmethod
    def from_secret(
        cls, name: bytes, secret: bytes, starts_at: float, expires_at: float
    ) -> TicketKey:
        return cls(
            name=name,
            hmac_key=secret[:SECRET_BYTES],
            aes_key=secret[SECRET_BYTES:],
            starts_at=starts_at,
            expires_at=expires_at,
        )


class TicketKeys:
    """The keys a serving process holds: the newest started one encrypts, any unexpired
    one decrypts. Immutable; a new set replaces the old one whole."""

    __slots__ = ("_by_name", "_newest_first")

    def __init__(self, keys: Iterable[TicketKey]) -> None:
        self._newest_first = tuple(sorted(keys, key=lambda k: k.starts_at, reverse=True))
        self._by_name = {k.name: k for k in self._newest_first}

    def __len__(self) -> int:
        return len(self._newest_first)

    def __repr__(self) -> str:
        return f"TicketKeys({len(self)} keys)"

    def __reduce__(self) -> tuple[type[TicketKeys], tuple[tuple[TicketKey, ...]]]:
        return (TicketKeys, (self._newest_first,))

    def encrypting(self, now: float) -> TicketKey | None:
        """The key new tickets are sealed with at ``now`` (None: issue no ticket)."""
        for key in self._newest_first:
            if key.starts_at <= now:
                return key if now < key.expires_at else None
        return None

    def decrypting(self, name: bytes, now: float) -> TicketKey | None:
        """The key named ``name`` if a ticket under it may still resume at ``now``."""
        key = self._by_name.get(name)
        if key is None or not key.starts_at <= now < key.expires_at:
            return None
        return key

    def names(self) -> tuple[bytes, ...]:
        return tuple(k.name for k in self._newest_first)

    def all(self) -> tuple[TicketKey, ...]:
        """Every key, newest first."""
        return self._newest_first


NO_KEYS: Final = TicketKeys(())


@dataclass(frozen=True, slots=True)
class Schedule:
    """The rotation: slot length and how long a key outlives its slot."""

    interval: float = DEFAULT_ROTATION
    accept_intervals: int = ACCEPT_INTERVALS

    def slot_start(self, now: float) -> float:
        """When the key encrypting at ``now`` started."""
        return math.floor(now / self.interval) * self.interval

    def wanted(self, now: float) -> tuple[float, float]:
        """The start times of the keys that must exist at ``now``: the current slot's
        and the next one's (made one slot ahead)."""
        current = self.slot_start(now)
        return current, current + self.interval

    def expiry(self, starts_at: float) -> float:
        """When a key that starts at ``starts_at`` stops decrypting."""
        return starts_at + (1 + self.accept_intervals) * self.interval

    def fetch_every(self) -> float:
        """How often a node reads the keys: well inside one slot, so a key made one
        slot ahead reaches every node before it starts; at most once a minute."""
        return min(60.0, self.interval / 4)
