"""Toolforge tool routing, pure: a tool's patterns compiled at table build, the legacy
``/<tool>/`` path, the 307 of a canonical tool (compat.md §2, docs/toolforge.md).

A tool is a proxy with ``toolforge`` set on ``<tool>.<canonical-domain>``; each of its
backends carries a pattern. ``ToolPaths`` holds them compiled (RE2), longest pattern
first and ties by text, so the order is fixed whatever order the store returned; the
first that matches the path wins. Each entry carries the tool's proxy narrowed to that
one backend (its own id, ``<proxy id>/<backend id>``; a tool with one route keeps its
proxy as is), so the data plane gives it a plan of its own and a request costs one search
per pattern tried, never a compile.

Backends of a tool's proxy without a pattern are never routed; patterns on any other
proxy are ignored (the router reads them only where ``toolforge`` is set).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from portway.errors import ConfigError, PortwayError, ValidationError
from portway.model import Backend, Proxy, TlsSettings, ToolSettings, normalize_hostname
from portway.router.patterns import Pattern, compile_pattern

DEFAULT_ID = "toolforge-default"


@dataclass(frozen=True, slots=True)
class ToolPath:
    pattern: Pattern
    proxy: Proxy  # the tool's proxy with only the backend of this pattern


@dataclass(frozen=True, slots=True)
class ToolPaths:
    """A tool's routes in the order they are tried."""

    paths: tuple[ToolPath, ...]

    def match(self, path: str) -> Proxy | None:
        """The narrowed proxy of the first pattern found in ``path``, or None."""
        for entry in self.paths:
            if entry.pattern.search(path):
                return entry.proxy
        return None


def tool_paths(proxy: Proxy) -> ToolPaths | None:
    """The compiled routes of a tool's proxy; None for any other proxy."""
    if proxy.toolforge is None:
        return None
    found: list[tuple[Pattern, Proxy]] = []
    for backend in proxy.backends:
        if backend.pattern is None:
            continue
        try:
            pattern = compile_pattern(backend.pattern)
        except ValidationError:
            continue  # screened out before a build (validation.backend_patterns)
        if len(proxy.backends) == 1:
            narrowed = proxy  # most tools have one route: its plan is the proxy's own
        else:
            narrowed = dataclasses.replace(
                proxy, id=f"{proxy.id}/{backend.id}", backends=(backend,)
            )
        found.append((pattern, narrowed))
    found.sort(key=lambda item: (-len(item[0].text), item[0].text))
    return ToolPaths(tuple(ToolPath(pattern, narrowed) for pattern, narrowed in found))


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolDomains:
    """The node's Toolforge settings, as the data plane routes by them.

    ``default``: the proxy (one backend, ``--toolforge-default-backend``) that gets what
    no tool answers under these domains; None → 404. ``https``: plain HTTP to the legacy
    domain, and to the default backend, is redirected (tools' own proxies carry this in
    their ``tls`` settings).
    """

    canonical: str
    legacy: str | None = None
    default: Proxy | None = None
    https: bool = True

    @classmethod
    def build(
        cls,
        canonical: str,
        *,
        legacy: str | None = None,
        default_backend: str | None = None,
        https: bool = True,
    ) -> ToolDomains:
        """From the settings' strings (``--toolforge-*``); bad values are ConfigErrors."""
        try:
            canonical = normalize_hostname(canonical, wildcard_ok=False)
            legacy = None if not legacy else normalize_hostname(legacy, wildcard_ok=False)
        except PortwayError as exc:
            raise ConfigError(f"toolforge domains: {exc.message}") from None
        default = None if not default_backend else _default_proxy(default_backend, https)
        return cls(canonical=canonical, legacy=legacy, default=default, https=https)

    def covers(self, host: str) -> bool:
        """``host`` is one of the Toolforge names, whose misses go to ``default``."""
        canonical = self.canonical
        return (
            host == canonical
            or host == self.legacy
            or (host.endswith(canonical) and host[-len(canonical) - 1 : -len(canonical)] == ".")
        )

    def tool_host(self, tool: str) -> str:
        return f"{tool}.{self.canonical}"


def _default_proxy(url: str, https: bool) -> Proxy:
    """``--toolforge-default-backend`` as a one-backend proxy of its own (checked by the
    backend policy when the data plane connects, like every backend)."""
    # Imported here: portway.protocol imports the router (request.py), not the reverse.
    from portway.protocol.registration import parse_destination

    try:
        destination = parse_destination(url.rstrip("/"))
    except PortwayError as exc:
        raise ConfigError(f"--toolforge-default-backend: {exc.message}") from None
    backend = Backend(
        id=DEFAULT_ID,
        address=destination.host,
        port=destination.port,
        tls=destination.scheme == "https",  # the parser knows http and https only
    )
    return Proxy(
        id=DEFAULT_ID,
        project="toolforge",
        hostname="toolforge-default",
        tls=TlsSettings(redirect_http=https, hsts=https),
        toolforge=ToolSettings(),
        backends=(backend,),
    )


def legacy_split(path: str) -> tuple[str, str]:
    """A legacy-domain path → (tool, the path after ``/<tool>``): ``/a/x`` → ("a", "/x"),
    ``/a`` → ("a", ""), ``/`` → ("", "/"). A tool is one DNS label: anything else is
    returned as "" (no tool), so a path can never name another host."""
    end = path.find("/", 1)
    tool, rest = (path[1:], "") if end < 0 else (path[1:end], path[end:])
    if not tool or not is_tool_name(tool):
        return "", path
    return tool, rest


def is_tool_name(text: str) -> bool:
    """A tool name is one lower-case DNS label: the first label of its hostname."""
    return (
        0 < len(text) <= 63
        and text[0] != "-"
        and text[-1] != "-"
        and all("a" <= c <= "z" or "0" <= c <= "9" or c == "-" for c in text)
    )


def redirect_location(domains: ToolDomains, tool: str, url: bytes) -> bytes:
    """``https://<tool>.<canonical>/<rest>?<query>`` for a legacy request target
    ``/<tool>/<rest>?<query>``: no port, the query kept as sent."""
    rest = url[len(tool) + 1 :]
    if not rest.startswith(b"/"):
        rest = b"/" + rest  # "/tool" and "/tool?q" land on the tool's root
    return b"https://" + domains.tool_host(tool).encode("ascii") + rest
