"""The ``DnsRecords`` seam: claim, move and release a hostname's records, and check a
set of hostnames against the server; and ``NoDns``, its no-op twin.

Free of dnspython, so the service layer can hold the seam without loading it; the RFC
2136 implementation is ``dns.records.Rfc2136Records``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Done:
    """The names a change created and removed."""

    created: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __add__(self, other: Done) -> Done:
        return Done(self.created + other.created, self.removed + other.removed)


NOTHING = Done()


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckReport:
    """What ``check`` found and did."""

    created: tuple[str, ...] = ()  # expected, missing: created
    repaired: tuple[str, ...] = ()  # ours with wrong addresses or TTL: rewritten
    stray: tuple[str, ...] = ()  # ours, not expected: listed
    removed: tuple[str, ...] = ()  # strays removed (only with prune)
    conflicts: tuple[tuple[str, str], ...] = ()  # expected but foreign: (name, its records)
    managed: bool = True  # False: this node keeps no DNS records (NoDns)

    @property
    def unfixed(self) -> bool:
        """Whether something is wrong that the check left as it was: a stray name not
        removed, or a served hostname that another party's records hold."""
        return bool(self.conflicts) or bool(set(self.stray) - set(self.removed))

    def findings(self) -> list[str]:
        """One line per finding, as ``portway dns check`` and the periodic check write
        them; none when all is well."""
        if not self.managed:
            return ["this node keeps no DNS records (no dns_server)"]
        lines = [f"created {name}: its records were missing" for name in self.created]
        lines += [f"repaired {name}: wrong addresses or TTL" for name in self.repaired]
        lines += [f"removed stray {name}" for name in self.removed]
        lines += [
            f"stray {name}: Portway's records, but no proxy serves it (prune removes it)"
            for name in self.stray
            if name not in self.removed
        ]
        lines += [
            f"conflict {name}: served, but it holds records Portway did not create: {found}"
            for name, found in self.conflicts
        ]
        return lines


class DnsRecords(Protocol):
    """Each call leaves the server as it was or fully changed; refusals are
    ``ConflictError`` (409, the name holds records Portway did not create) and
    ``DnsError`` (502/503)."""

    def claim(self, hostname: str) -> Done:
        """Give ``hostname`` (``*.x`` for a wildcard) Portway's records."""
        ...

    def release(self, hostname: str) -> Done:
        """Remove Portway's records of ``hostname``; never a record it did not create."""
        ...

    def move(self, old: str, new: str) -> Done:
        """Rename: ``new`` gets the records, ``old`` loses them."""
        ...

    def check(self, expected: Iterable[str], *, prune: bool = False) -> CheckReport:
        """Create the missing records of ``expected`` (normalized hostnames, as the
        store holds them), repair wrong ones, list (with ``prune``: remove) Portway's
        records of names not in ``expected``; never touch a name that is not Portway's."""
        ...


class NoDns:
    """A node without ``dns_server``: DNS is someone else's business."""

    def claim(self, hostname: str) -> Done:
        return NOTHING

    def release(self, hostname: str) -> Done:
        return NOTHING

    def move(self, old: str, new: str) -> Done:
        return NOTHING

    def check(self, expected: Iterable[str], *, prune: bool = False) -> CheckReport:
        return CheckReport(managed=False)
