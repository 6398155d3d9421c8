"""The DNS check: the records of every hostname Portway serves, against the server.

The writes keep the records as they go (service/hostnames.py); the check finds what
happened beside them: a record an operator deleted, addresses that changed
(``dns_addresses``), a name left behind by a failed undo, another party's records on a
served name. It re-creates and repairs Portway's own names, lists the others, and
removes stray names of Portway's only when asked to prune.
"""

from __future__ import annotations

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
        stray names of Portway's). Reads the store once; a proxy created meanwhile got its
        records from its own write."""
        require_admin(actor)
        expected = self._read(served_hostnames)
        return self.dns.check(expected, prune=prune)
