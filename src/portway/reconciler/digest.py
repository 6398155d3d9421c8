"""A digest of a snapshot's routes, for telling whether the nodes of a tier serve the
same configuration (``portway node list``).

The digest is the sum, modulo 2**128, of a hash of each proxy's full value, so that it
does not depend on order and a change costs only the proxies it touched: take the old
values' hashes out and put the new ones in. Every node builds its proxies from the same
store rows in the same order, so the same revision gives the same digest everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from portway.model import Proxy
from portway.router import RouteTable

_MODULUS = 1 << 128


def _hash(proxy: Proxy) -> int:
    # repr of a frozen dataclass of tuples and scalars is deterministic across processes.
    return int.from_bytes(hashlib.blake2b(repr(proxy).encode(), digest_size=16).digest())


def digest_of(routes: RouteTable) -> int:
    return sum(_hash(r.proxy) for r in routes.routes()) % _MODULUS


def next_digest(digest: int, before: RouteTable, after: RouteTable, changed: Iterable[str]) -> int:
    """The digest of ``after``, given ``digest`` of ``before`` and the ids that differ."""
    for proxy_id in changed:
        old, new = before.get(proxy_id), after.get(proxy_id)
        if old is not None:
            digest -= _hash(old.proxy)
        if new is not None:
            digest += _hash(new.proxy)
    return digest % _MODULUS


def as_text(digest: int) -> str:
    return f"{digest:032x}"
