"""What Portway's DNS records should be, and what the server's records say (pure).

For a hostname Portway serves, it keeps at that exact name (``*.x`` for a wildcard
proxy): the A and AAAA records of the node's public addresses, and a TXT ownership
marker ``heritage=portway,owner=<owner>`` beside them, as external-dns does. A name is
Portway's only when its marker names this owner; any other record at a name (a
floating IP's A, a CNAME, another cluster's marker) makes the name foreign, and
Portway never changes a foreign name.

Records are plain values here: each rdata in its presentation form as dnspython writes
it (``192.0.2.10``, ``floating.cloud.test.``, ``"heritage=portway,owner=a"``), which
parses back to the same rdata, so an observed RRset can be a prerequisite as it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HERITAGE = "portway"
ADDRESS_TYPES = ("A", "AAAA")


@dataclass(frozen=True, slots=True)
class RRset:
    """The records of one type at one name."""

    rdtype: str
    ttl: int
    values: frozenset[str]


Records = Mapping[str, RRset]  # the RRsets at one name, by type


def marker(owner: str) -> str:
    """The TXT record (presentation form, one quoted string) marking a name as this
    owner's. The owner is checked at configuration: no quote, space or comma."""
    return f'"heritage={HERITAGE},owner={owner}"'


def marker_owner(value: str) -> str | None:
    """The owner a TXT record (presentation form) names, or None if it is not a
    Portway marker. Only a single plain string can be one, as only those are written."""
    text = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else ""
    if not text or '"' in text or "\\" in text:
        return None
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, _, item = part.partition("=")
        fields[key] = item
    if fields.get("heritage") != HERITAGE or not fields.get("owner"):
        return None
    return fields["owner"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Desired:
    """What every Portway name points at."""

    addresses: tuple[str, ...]
    ttl: int
    owner: str

    def rrsets(self) -> dict[str, RRset]:
        """The RRsets a name of ours holds (only the marker among its TXT records)."""
        out = {"TXT": RRset("TXT", self.ttl, frozenset({marker(self.owner)}))}
        for rdtype in ADDRESS_TYPES:
            values = frozenset(a for a in self.addresses if address_type(a) == rdtype)
            if values:
                out[rdtype] = RRset(rdtype, self.ttl, values)
        return out


def address_type(address: str) -> str:
    return "A" if ipaddress.ip_address(address).version == 4 else "AAAA"


@dataclass(frozen=True, slots=True)
class Assessment:
    """Whose a name is: ``free`` (no records), ``ours`` or ``foreign``; for a foreign
    name, ``found`` describes its records for the 409."""

    state: str
    found: str = ""

    @property
    def free(self) -> bool:
        return self.state == "free"

    @property
    def ours(self) -> bool:
        return self.state == "ours"


FREE = Assessment("free")
OURS = Assessment("ours")


def assess(records: Records, owner: str) -> Assessment:
    """Decide whose the name holding ``records`` is."""
    if not records:
        return FREE
    txt = records.get("TXT")
    owners = {marker_owner(v) for v in txt.values} if txt else set()
    if owner in owners:
        return OURS
    return Assessment("foreign", describe(records))


def describe(records: Records) -> str:
    """``CNAME floating.cloud.test.; A 192.0.2.10``: the records, for a message."""
    parts = []
    for rdtype in sorted(records):
        for value in sorted(records[rdtype].values):
            parts.append(f"{rdtype} {value}")
    return "; ".join(parts)


def needs_repair(records: Records, desired: Desired) -> bool:
    """Whether a name of ours lacks the addresses or TTL it should have."""
    want = desired.rrsets()
    for rdtype in ADDRESS_TYPES:
        if records.get(rdtype) != want.get(rdtype):
            return True
    txt = records["TXT"]
    return txt.ttl != desired.ttl


def zone_of(hostname: str, zones: Iterable[str]) -> str | None:
    """The longest of ``zones`` that ``hostname`` lies strictly below, or None (a name
    Portway does not manage in DNS)."""
    below = [z for z in zones if hostname.endswith("." + z)]
    return max(below, key=len) if below else None


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckPlan:
    """What ``dns check`` does in one zone."""

    create: tuple[str, ...] = ()  # expected, no records: claim it
    repair: tuple[str, ...] = ()  # ours, wrong addresses or TTL: rewrite them
    stray: tuple[str, ...] = ()  # ours, not expected: listed (removed only when pruning)
    conflicts: tuple[tuple[str, str], ...] = ()  # expected, foreign: (name, its records)


def plan_check(
    zone_names: Mapping[str, Records], expected: Iterable[str], desired: Desired
) -> CheckPlan:
    """Compare a zone's names (from a transfer: exact names, no wildcard answers) with
    the hostnames that should have records."""
    wanted = set(expected)
    create, repair, conflicts = [], [], []
    for name in sorted(wanted):
        found = assess(zone_names.get(name, {}), desired.owner)
        if found.free:
            create.append(name)
        elif not found.ours:
            conflicts.append((name, found.found))
        elif needs_repair(zone_names[name], desired):
            repair.append(name)
    stray = sorted(
        name
        for name, records in zone_names.items()
        if name not in wanted and assess(records, desired.owner).ours
    )
    return CheckPlan(
        create=tuple(create),
        repair=tuple(repair),
        stray=tuple(stray),
        conflicts=tuple(conflicts),
    )
