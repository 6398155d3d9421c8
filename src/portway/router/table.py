"""The route table: Host → path prefix → proxy.

Lookup order (architecture.md): the exact host, then the one-level wildcard ``*.parent``,
then within a host the longest path prefix. Prefixes match on segment boundaries, so
``/tool`` matches ``/tool`` and ``/tool/x`` but never ``/toolbox``. When an exact host has
no prefix that matches, the wildcard for its parent is tried, so ``*.example.org`` can
catch what a path-prefixed exact entry leaves out.

A table is never mutated after it is built: ``with_changes`` returns a new table that
shares every untouched tuple with the old one, which is what keeps a single change on a
100 000-proxy table cheap (dict copies, no re-sort of unaffected hosts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from portway.model import Proxy

_EMPTY: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class Route:
    """One proxy as the data plane sees it."""

    proxy: Proxy
    prefix: str

    @property
    def sort_key(self) -> tuple[int, str]:
        # Longest prefix first; ties broken by text so the order is deterministic.
        return (-len(self.prefix), self.prefix)

    def matches(self, path: str) -> bool:
        prefix = self.prefix
        if prefix == "/" or path == prefix:
            return True
        return path.startswith(prefix) and path[len(prefix)] == "/"


def normalize_request_host(raw: str) -> str | None:
    """Host header → lookup key: lower-case, port and one trailing dot removed.

    Returns None when nothing usable is left (the caller answers 400).
    """
    host = raw.strip().lower()
    if host.startswith("["):  # IPv6 literal: [::1]:8080
        end = host.find("]")
        if end < 0:
            return None
        host = host[: end + 1]
    else:
        colon = host.rfind(":")
        if colon >= 0:
            port = host[colon + 1 :]
            if port and not port.isdigit():
                return None
            host = host[:colon]
    if host.endswith("."):
        host = host[:-1]
    return host or None


class RouteTable:
    """Immutable mapping from (host, path) to a Route."""

    __slots__ = ("_by_id", "_exact", "_wildcard")

    def __init__(
        self,
        exact: Mapping[str, tuple[Route, ...]],
        wildcard: Mapping[str, tuple[Route, ...]],
        by_id: Mapping[str, Route],
    ) -> None:
        self._exact = exact
        self._wildcard = wildcard
        self._by_id = by_id

    @classmethod
    def build(cls, proxies: Iterable[Proxy]) -> RouteTable:
        return cls({}, {}, {}).with_changes(upserts=proxies)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, proxy_id: object) -> bool:
        return proxy_id in self._by_id

    def get(self, proxy_id: str) -> Route | None:
        return self._by_id.get(proxy_id)

    def routes(self) -> Iterable[Route]:
        return self._by_id.values()

    def match(self, host: str, path: str) -> Route | None:
        """Find the route for a normalized host and a path (no query string)."""
        for route in self._exact.get(host, _EMPTY):
            if route.matches(path):
                return route
        dot = host.find(".")
        if dot >= 0:
            for route in self._wildcard.get(host[dot + 1 :], _EMPTY):
                if route.matches(path):
                    return route
        return None

    def with_changes(
        self, *, upserts: Iterable[Proxy] = (), removed: Iterable[str] = ()
    ) -> RouteTable:
        """A new table with ``upserts`` added or replaced and ``removed`` ids dropped."""
        by_id = dict(self._by_id)
        exact = dict(self._exact)
        wildcard = dict(self._wildcard)
        touched: dict[tuple[bool, str], list[Route]] = {}

        def drop(proxy_id: str) -> None:
            old = by_id.pop(proxy_id, None)
            if old is not None:
                key = _host_key(old.proxy.hostname)
                bucket = touched.get(key)
                if bucket is None:
                    source = wildcard if key[0] else exact
                    bucket = touched[key] = list(source.get(key[1], _EMPTY))
                bucket[:] = [r for r in bucket if r.proxy.id != proxy_id]

        for proxy_id in removed:
            drop(proxy_id)
        for proxy in upserts:
            drop(proxy.id)
            route = Route(proxy=proxy, prefix=proxy.path_prefix)
            by_id[proxy.id] = route
            key = _host_key(proxy.hostname)
            bucket = touched.get(key)
            if bucket is None:
                source = wildcard if key[0] else exact
                bucket = touched[key] = list(source.get(key[1], _EMPTY))
            bucket.append(route)

        for (is_wild, host), bucket in touched.items():
            target = wildcard if is_wild else exact
            if bucket:
                target[host] = tuple(sorted(bucket, key=_sort_key))
            else:
                target.pop(host, None)
        return RouteTable(exact, wildcard, by_id)


def _host_key(hostname: str) -> tuple[bool, str]:
    if hostname.startswith("*."):
        return (True, hostname[2:])
    return (False, hostname)


def _sort_key(route: Route) -> tuple[int, str]:
    return route.sort_key
