"""``Rfc2136Records``: the ``DnsRecords`` seam (dns/seam.py) on one authoritative server.

Each change returns what it did (``Done``), so an undo (dns/guard.py) reverts only
that: a claim of a name that was ours already created nothing and releases nothing
when the caller's commit fails. Hostnames outside the configured zones are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import dns.rcode
import dns.update

from portway.dns import updates
from portway.dns.client import DnsClient
from portway.dns.config import DnsConfig
from portway.dns.plan import Desired, assess, marker, needs_repair, plan_check, zone_of
from portway.dns.seam import NOTHING, CheckReport, DnsRecords, Done, NoDns
from portway.errors import ConflictError, DnsError, PortwayError

log = logging.getLogger("portway.dns")
__all__ = ["NOTHING", "CheckReport", "DnsRecords", "Done", "NoDns", "Rfc2136Records"]
_ATTEMPTS = 3  # a name that changes under every attempt is reported, not fought over


class Rfc2136Records:
    """Records on one authoritative server, changed by TSIG-signed RFC 2136 UPDATEs."""

    def __init__(self, config: DnsConfig, client: DnsClient | None = None) -> None:
        self.zones = config.zones
        self.desired = Desired(addresses=config.addresses, ttl=config.ttl, owner=config.owner)
        self.client = client or DnsClient(config)
        self._key = self.client.key

    def claim(self, hostname: str) -> Done:
        zone = zone_of(hostname, self.zones)
        if zone is None:
            return NOTHING
        for _ in range(_ATTEMPTS):
            if self._send(updates.claim_free(zone, self._key, hostname, self.desired)):
                log.info("dns: created %s", hostname)
                return Done(created=(hostname,))
            records = self.client.records(hostname)  # the name exists: its own records
            found = assess(records, self.desired.owner)
            if found.free:
                continue  # removed since; claim it afresh
            if not found.ours:
                raise ConflictError(
                    f"{hostname} already has DNS records Portway did not create: {found.found}",
                    field="hostname",
                )
            if not needs_repair(records, self.desired):
                return NOTHING
            txt = records["TXT"]
            if self._send(updates.converge(zone, self._key, hostname, txt, self.desired)):
                log.info("dns: repaired %s", hostname)
                return NOTHING
        raise self._unsettled(hostname)

    def release(self, hostname: str) -> Done:
        zone = zone_of(hostname, self.zones)
        if zone is None:
            return NOTHING
        if self._send(updates.release_exact(zone, self._key, hostname, self.desired)):
            log.info("dns: removed %s", hostname)
            return Done(removed=(hostname,))
        # Not exactly our marker: other TXT records beside it, or nothing of ours (gone
        # already, or an answer synthesized from a wildcard, which the prerequisite,
        # checked on the zone's own names, did not see).
        records = self.client.records(hostname)
        txt = records.get("TXT")
        if not assess(records, self.desired.owner).ours or txt is None:
            return NOTHING
        if txt.values == {marker(self.desired.owner)}:
            return NOTHING  # the same set failed the prerequisite: not the name's own
        if self._send(updates.release_among(zone, self._key, hostname, txt, self.desired)):
            log.info("dns: removed %s (other TXT records kept)", hostname)
            return Done(removed=(hostname,))
        raise self._unsettled(hostname)

    def move(self, old: str, new: str) -> Done:
        if old == new:
            return self.claim(new)
        zone = zone_of(new, self.zones)
        if zone is not None and zone == zone_of(old, self.zones):
            message = updates.move(zone, self._key, old, new, self.desired)
            if self._send(message):
                log.info("dns: moved %s to %s", old, new)
                return Done(created=(new,), removed=(old,))
        # Across zones, or a prerequisite failed: claim, then release, undoing the claim
        # if the release fails.
        created = self.claim(new)
        try:
            return created + self.release(old)
        except PortwayError:
            for name in created.created:
                try:
                    self.release(name)
                except PortwayError as exc:  # the release's error is the one to report
                    log.error("dns: could not remove %s after a failed move: %s", name, exc)
            raise

    def check(self, expected: Iterable[str], *, prune: bool = False) -> CheckReport:
        wanted = set(expected)
        created: list[str] = []
        repaired: list[str] = []
        stray: list[str] = []
        removed: list[str] = []
        conflicts: list[tuple[str, str]] = []
        for zone in self.zones:
            mine = {h for h in wanted if zone_of(h, self.zones) == zone}
            plan = plan_check(self.client.transfer(zone), mine, self.desired)
            conflicts += plan.conflicts
            stray += plan.stray
            for hostname in plan.create + plan.repair:
                try:
                    self.claim(hostname)
                except ConflictError as exc:  # taken since the transfer
                    conflicts.append((hostname, exc.message))
                    continue
                (created if hostname in plan.create else repaired).append(hostname)
            if prune:
                for hostname in plan.stray:
                    removed += self.release(hostname).removed
        return CheckReport(
            created=tuple(created),
            repaired=tuple(repaired),
            stray=tuple(stray),
            removed=tuple(removed),
            conflicts=tuple(conflicts),
        )

    def _send(self, message: dns.update.UpdateMessage) -> bool:
        """True if the update was applied; False if a prerequisite failed."""
        return self.client.update(message) == dns.rcode.NOERROR

    def _unsettled(self, hostname: str) -> DnsError:
        return DnsError(
            f"the DNS records of {hostname} changed during every attempt to update them; try again"
        )
