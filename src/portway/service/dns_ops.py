"""The DNS check: the records of every hostname Portway serves, against the server.

The writes keep the records as they go (service/hostnames.py); the check finds what
happened beside them: a record an operator deleted, addresses that changed
(``dns_addresses``), a name left behind by a failed undo, another party's records on a
served name. It re-creates and repairs Portway's own names, lists the others, and
removes stray names of Portway's only when asked to prune.
"""

from __future__ import annotations

import dataclasses

from portway.dns.seam import CheckReport
from portway.service.auth import Actor, require_admin
from portway.service.base import ServiceBase
from portway.store import Reader


def served_hostnames(reader: Reader) -> set[str]:
    """Every hostname a proxy of any project is on (``*.x`` for a wildcard)."""
    return {proxy.hostname for proxy in reader.find_proxies()}


class DnsOps(ServiceBase):
    def check_dns(self, actor: Actor, *, prune: bool = False) -> CheckReport:
        """Compare the DNS zones with the served hostnames (admin only): create missing
        records, repair wrong ones, list stray and foreign names (``prune``: remove the
        stray names of Portway's). Reads the store once without a lock: a proxy created
        meanwhile got its records from its own write, and one deleted meanwhile may leave
        a record the next check lists."""
        require_admin(actor)
        expected = self._read(served_hostnames)
        report = self.dns.check(expected, prune=False)
        if prune and report.stray:
            report = dataclasses.replace(report, removed=self._prune(actor, report.stray))
        return report

    def _prune(self, actor: Actor, stray: tuple[str, ...]) -> tuple[str, ...]:
        """Remove the stray names under the write lock, so that a proxy created since
        the check read the store keeps its records; the change log names what went."""
        removed: list[str] = []
        with self._write(actor) as tx:
            served = served_hostnames(tx)
            for name in stray:
                if name not in served:
                    removed += self.dns.release(name).removed
            tx.record(kind="dns", action="prune", object_id="dns", project=None, after=removed)
        return tuple(removed)
