"""An in-memory ``ToolRoutes``: what a source asked for, as dicts, for the sources'
own tests (the service-backed implementation is tested through ``portway serve``)."""

from __future__ import annotations

from collections.abc import Collection

from portway.errors import AuthError
from portway.router.patterns import compile_pattern
from portway.sources.tools import ToolRoute


class MemoryRegistrar:
    """Tool → route → destination text, as a dict; refuses patterns RE2 refuses."""

    def __init__(self) -> None:
        self.routes: dict[str, dict[str, str]] = {}
        self.canonical: set[str] = set()

    def register(self, route: ToolRoute) -> None:
        compile_pattern(route.pattern)
        self.routes.setdefault(route.tool, {})[route.pattern] = route.destination.text
        if route.canonical:
            self.canonical.add(route.tool)

    def resync(self, routes: Collection[ToolRoute]) -> None:
        self.routes, self.canonical = {}, set()
        for route in routes:
            self.register(route)

    def unregister(self, tool: str, route: str) -> None:
        self.routes.get(tool, {}).pop(route, None)
        self.canonical.discard(tool)

    def tool_for_token(self, secret: str) -> str:
        if secret != "gamma-secret":
            raise AuthError("invalid token")
        return "gamma"
