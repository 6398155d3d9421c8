"""Which per-port listeners a data plane has open, and which it should (issue 13).

Pure: ``plan`` compares the listeners open now with those a snapshot's proxies claim,
through the operator's ``ListenPolicy`` (a port it does not allow, or one of Portway's
own, is never opened, whatever the snapshot says: the second wall behind the API's
check), and returns what to open and what to close. ``DataPlane`` carries it out; each
worker derives the same set from the same snapshot, so with SO_REUSEPORT every worker
accepts on every port.

A listener is keyed by address, port and protocol: a port whose protocol changes is
closed and opened again. Closing a listener stops accepting; the connections it accepted
go on until they end, and the other listeners are never touched.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from portway.model.listen_policy import ListenPolicy


@dataclass(frozen=True, order=True, slots=True)
class ListenerKey:
    address: str
    port: int
    protocol: str  # one of model.proxy.PROTOCOLS


@dataclass(frozen=True, slots=True)
class ListenerPlan:
    open: tuple[ListenerKey, ...]
    close: tuple[ListenerKey, ...]

    def __bool__(self) -> bool:
        return bool(self.open or self.close)


def wanted(claimed: Mapping[int, str], policy: ListenPolicy) -> frozenset[ListenerKey]:
    """The listeners for ``claimed`` (port → protocol, ``RouteTable.listeners``) that
    ``policy`` allows, on each address it gives the port."""
    keys: set[ListenerKey] = set()
    for port, protocol in claimed.items():
        keys.update(ListenerKey(a, port, protocol) for a in policy.opens(port))
    return frozenset(keys)


def plan(current: Collection[ListenerKey], target: frozenset[ListenerKey]) -> ListenerPlan:
    """What to open and close to go from ``current`` to ``target``; closes come first
    in the caller's order, so a port changing protocol is free before it is reopened."""
    return ListenerPlan(
        open=tuple(sorted(target.difference(current))),
        close=tuple(sorted(k for k in current if k not in target)),
    )
