"""The one path for proxy rows, and the DNS records that follow their hostnames.

Every insert, update and delete of a proxy row goes through ``ProxyRows`` (the write's
own, from ``ServiceBase._proxy_write``), so whichever caller creates, renames or deletes
a proxy (the native API, the dynamicproxy API, a source) changes DNS the same way: one
definition, not one per API.

A hostname's records belong to the hostname, not to one proxy: several proxies may share
it (path prefixes, a shared host). So a name is claimed when its first proxy appears and
released when its last one goes, and a rename is a move (``steps``, pure). The steps run
through the write's ``DnsChanges`` after the body (every store check passed) and before
the commit: a DNS refusal commits nothing, and a failed commit undoes them
(dns/guard.py). The DNS layer leaves alone every name outside its zones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from portway.dns.guard import DnsChanges
from portway.model import Proxy
from portway.store import Transaction

Verb = Literal["claim", "release", "move"]


@dataclass(frozen=True, slots=True)
class Step:
    """One DNS change: ``claim``/``release`` one name, or ``move`` (old, new)."""

    verb: Verb
    names: tuple[str, ...]


def steps(counts: Mapping[str, tuple[int, int]]) -> tuple[Step, ...]:
    """The DNS changes of a write, from each touched hostname's proxy count (before,
    after): a name that gains its first proxy is claimed, one that loses its last is
    released; one of each is a rename, made as one move. Claims come first, so a refused
    claim has removed nothing."""
    appear = sorted(h for h, (before, after) in counts.items() if before == 0 < after)
    vanish = sorted(h for h, (before, after) in counts.items() if after == 0 < before)
    if len(appear) == len(vanish) == 1:
        return (Step("move", (vanish[0], appear[0])),)
    return tuple(Step("claim", (h,)) for h in appear) + tuple(Step("release", (h,)) for h in vanish)


class ProxyRows:
    """The proxy rows one write changes, and how many proxies each hostname gained or
    lost by them."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self._delta: Counter[str] = Counter()

    def insert(self, proxy: Proxy) -> None:
        self.tx.insert_proxy(proxy)
        self._delta[proxy.hostname] += 1

    def update(self, before: Proxy, after: Proxy) -> None:
        """Overwrite the row of ``before`` with ``after`` (not its backends)."""
        self.tx.update_proxy(after)
        if after.hostname != before.hostname:
            self._delta[before.hostname] -= 1
            self._delta[after.hostname] += 1

    def delete(self, proxy: Proxy) -> None:
        self.tx.delete_proxy(proxy.id)
        self._delta[proxy.hostname] -= 1

    def counts(self) -> dict[str, tuple[int, int]]:
        """(before, after) proxy counts of every hostname this write moved a proxy to or
        from, read inside the write (which sees its own rows)."""
        out = {}
        for hostname, delta in self._delta.items():
            if delta:
                after = len(self.tx.find_proxies(hostname=hostname))
                out[hostname] = (after - delta, after)
        return out

    def apply(self, dns: DnsChanges) -> None:
        """Make the write's DNS changes (DnsError, or ConflictError for a name another
        party holds: the write fails and nothing is committed)."""
        for step in steps(self.counts()):
            if step.verb == "move":
                dns.move(*step.names)
            elif step.verb == "claim":
                dns.claim(step.names[0])
            else:
                dns.release(step.names[0])
