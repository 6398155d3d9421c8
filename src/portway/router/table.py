"""The route table: Host → path prefix → proxy.

Lookup order (architecture.md): the exact host, then the one-level wildcard ``*.parent``,
then within a host the longest path prefix. Prefixes match on segment boundaries, so
``/tool`` matches ``/tool`` and ``/tool/x`` but never ``/toolbox``.

A hostname belongs to the project that routes it, with all its paths (issue 7): when an
exact host has no prefix that matches, the wildcard for its parent is tried only if that
wildcard's proxy belongs to the same project, so ``*.example.org`` of project A never
catches a path that project B's ``app.example.org`` leaves out (that is a 404). A host
that several projects route by path (an operator's shared host, docs/dataplane.md) has
no owner and never falls back to a wildcard. Each exact host keeps its owner next to its
routes, so the rule costs one comparison per lookup and stays O(1).

Proxies on ports of their own (``listen_port``, issue 13) are routed by a table per
port, held by the table of the shared listeners: ``on_port`` gives it, ``listeners``
says which ports have one and what they speak, and ``get``/``routes`` cover every proxy
of every port. A proxy on one port never answers on another, nor on the shared ones.

A table is never mutated after it is built: ``with_changes`` returns a new table that
shares every untouched host entry with the old one, which is what keeps a single change
on a 100 000-proxy table cheap (dict copies, no re-sort of unaffected hosts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from portway.model import Proxy
from portway.router.tools import ToolPaths, tool_paths

_EMPTY: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class Route:
    """One proxy as the data plane sees it."""

    proxy: Proxy
    prefix: str
    # A Toolforge tool's routes, compiled when the table is built (router/tools.py).
    tool: ToolPaths | None = None

    @property
    def sort_key(self) -> tuple[int, str]:
        # Longest prefix first; ties broken by text so the order is deterministic.
        return (-len(self.prefix), self.prefix)

    def matches(self, path: str) -> bool:
        prefix = self.prefix
        if prefix == "/" or path == prefix:
            return True
        return path.startswith(prefix) and path[len(prefix)] == "/"


@dataclass(frozen=True, slots=True)
class HostRoutes:
    """The routes of one hostname, longest prefix first, and the project they belong to
    (None when several projects share the hostname by path)."""

    routes: tuple[Route, ...]
    owner: str | None

    @classmethod
    def of(cls, routes: list[Route]) -> HostRoutes:
        owners = {r.proxy.project for r in routes}
        owner = owners.pop() if len(owners) == 1 else None
        return cls(tuple(sorted(routes, key=_sort_key)), owner)


_NO_HOST = HostRoutes(_EMPTY, None)


def normalize_request_host(raw: str) -> str | None:
    """Host header → lookup key: lower-case, port and one trailing dot removed.

    Returns None when nothing usable is left (the caller answers 400).
    """
    # Only SP and HTAB surround a field value (RFC 9110 §5.5); str.strip() would also
    # drop bytes such as 0xA0 that a backend keeps, and the two would disagree on the host.
    host = raw.strip(" \t").lower()
    port = ""
    if host.startswith("["):  # IPv6 literal: [::1]:8080
        end = host.find("]")
        if end < 0:
            return None
        host, rest = host[: end + 1], host[end + 1 :]
        if rest:
            if rest[0] != ":":
                return None
            port = rest[1:]
    else:
        colon = host.rfind(":")
        if colon >= 0:
            host, port = host[:colon], host[colon + 1 :]
    if port and not (port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        return None
    if host.endswith("."):
        host = host[:-1]
    return host or None


class RouteTable:
    """Immutable mapping from (host, path) to a Route."""

    __slots__ = ("_by_id", "_exact", "_port", "_ports", "_wildcard")

    def __init__(
        self,
        exact: Mapping[str, HostRoutes],
        wildcard: Mapping[str, HostRoutes],
        by_id: Mapping[str, Route],
        ports: Mapping[int, RouteTable] | None = None,
        port: int | None = None,
    ) -> None:
        self._exact = exact
        self._wildcard = wildcard
        self._by_id = by_id
        self._ports: Mapping[int, RouteTable] = ports or {}
        self._port = port  # the listen_port of the proxies this table routes by host

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

    def on_port(self, port: int) -> RouteTable | None:
        """The table of the proxies on ``port`` of their own, or None when none are."""
        return self._ports.get(port)

    def listeners(self) -> Mapping[int, str]:
        """Each port some proxy claims → its protocol: that of the port's proxy with the
        smallest id, so every data plane agrees (the service keeps a port to one)."""
        return {port: _protocol(table) for port, table in self._ports.items()}

    def match(self, host: str, path: str) -> Route | None:
        """Find the route for a normalized host and a path (no query string)."""
        exact = self._exact.get(host)
        if exact is not None:
            for route in exact.routes:
                if route.matches(path):
                    return route
            if exact.owner is None:
                return None  # several projects share this host: no wildcard speaks for it
        dot = host.find(".")
        if dot < 0:
            return None
        for route in self._wildcard.get(host[dot + 1 :], _NO_HOST).routes:
            if route.matches(path) and (exact is None or route.proxy.project == exact.owner):
                return route
        return None

    def tool(self, host: str) -> Route | None:
        """The tool proxy of exactly ``host`` (never a wildcard's), or None."""
        exact = self._exact.get(host)
        if exact is None:
            return None
        for route in exact.routes:
            if route.tool is not None and route.prefix == "/":
                return route
        return None

    def answering(self, host: str) -> HostRoutes | None:
        """The routes that answer for a normalized host: its own when it is routed
        exactly, else its parent's wildcard; None when nobody routes it. The TLS
        listener picks certificates by the ``owner`` of these (dataplane/tls.py)."""
        exact = self._exact.get(host)
        if exact is not None:
            return exact
        dot = host.find(".")
        found = self._wildcard.get(host[dot + 1 :]) if dot >= 0 else None
        # A hostname routed only on ports of its own still has its owner (zones give a
        # hostname to one project on every port); a few ports, looked at per handshake.
        for table in self._ports.values() if found is None else ():
            found = table.answering(host)
            if found is not None:
                break
        return found

    def with_changes(
        self, *, upserts: Iterable[Proxy] = (), removed: Iterable[str] = ()
    ) -> RouteTable:
        """A new table with ``upserts`` added or replaced and ``removed`` ids dropped."""
        upserts = list(upserts)
        removed = list(removed)
        by_id = dict(self._by_id)
        here = self._port
        ports = self._port_changes(upserts, removed) if here is None else self._ports
        exact = dict(self._exact)
        wildcard = dict(self._wildcard)
        touched: dict[tuple[bool, str], list[Route]] = {}

        def drop(proxy_id: str) -> None:
            old = by_id.pop(proxy_id, None)
            if old is not None and old.proxy.listen_port == here:
                key = _host_key(old.proxy.hostname)
                bucket = touched.get(key)
                if bucket is None:
                    source = wildcard if key[0] else exact
                    bucket = touched[key] = list(source.get(key[1], _NO_HOST).routes)
                bucket[:] = [r for r in bucket if r.proxy.id != proxy_id]

        for proxy_id in removed:
            drop(proxy_id)
        for proxy in upserts:
            drop(proxy.id)
            port = proxy.listen_port
            if port != here and port is not None:  # its port's table routes it (root only)
                by_id[proxy.id] = ports[port]._by_id[proxy.id]
                continue
            route = Route(proxy=proxy, prefix=proxy.path_prefix, tool=tool_paths(proxy))
            by_id[proxy.id] = route
            key = _host_key(proxy.hostname)
            bucket = touched.get(key)
            if bucket is None:
                source = wildcard if key[0] else exact
                bucket = touched[key] = list(source.get(key[1], _NO_HOST).routes)
            bucket.append(route)

        for (is_wild, host), bucket in touched.items():
            target = wildcard if is_wild else exact
            if bucket:
                target[host] = HostRoutes.of(bucket)
            else:
                target.pop(host, None)
        return RouteTable(exact, wildcard, by_id, ports, here)

    def _port_changes(self, upserts: list[Proxy], removed: list[str]) -> Mapping[int, RouteTable]:
        """The per-port tables once the changes apply; untouched ports are shared."""
        gone: dict[int, list[str]] = {}
        added: dict[int, list[Proxy]] = {}
        for proxy_id in [*removed, *(p.id for p in upserts)]:
            old = self._by_id.get(proxy_id)
            if old is not None and old.proxy.listen_port is not None:
                gone.setdefault(old.proxy.listen_port, []).append(proxy_id)
        for proxy in upserts:
            if proxy.listen_port is not None:
                added.setdefault(proxy.listen_port, []).append(proxy)
        if not gone and not added:
            return self._ports
        ports = dict(self._ports)
        for port in gone.keys() | added.keys():
            table = ports.get(port, RouteTable({}, {}, {}, port=port)).with_changes(
                upserts=added.get(port, ()), removed=gone.get(port, ())
            )
            if len(table):
                ports[port] = table
            else:
                ports.pop(port, None)
        return ports


def _protocol(table: RouteTable) -> str:
    return min(table.routes(), key=lambda r: r.proxy.id).proxy.protocol


def _host_key(hostname: str) -> tuple[bool, str]:
    if hostname.startswith("*."):
        return (True, hostname[2:])
    return (False, hostname)


def _sort_key(route: Route) -> tuple[int, str]:
    return route.sort_key
