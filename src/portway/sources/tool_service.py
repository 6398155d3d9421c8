"""``ToolRoutes`` over the service: what the Toolforge sources ask becomes service calls.

One instance is bound to one source ("toolforge" for the 8282 listener, "kubernetes"
for the Service watcher): its actor's name is on every change-log row and its source on
every project, proxy and backend it creates, so a resync replaces only its own routes.
A tool is the project named like it, with the proxy ``<tool>.<canonical-domain>``
(``service.tools`` holds the rules); the tool's name comes from the caller's identity
(identd, a token), so a tool can only ever name its own proxy.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Final

from portway.errors import AuthError, ValidationError
from portway.model import TlsSettings, normalize_hostname
from portway.router.tools import is_tool_name
from portway.service import Actor, Service
from portway.service.tools import ToolRouteSpec
from portway.sources.tools import ToolRoute

log = logging.getLogger("portway.sources.tools")

# Tools are served over HTTPS only (compat.md §2): plain HTTP gets a 301, answers HSTS.
TOOL_TLS: Final = TlsSettings(redirect_http=True, hsts=True)


class ServiceToolRoutes:
    """The service-backed ``ToolRoutes`` of one source."""

    def __init__(
        self,
        service: Service,
        *,
        source: str,
        canonical_domain: str,
        tls: TlsSettings = TOOL_TLS,
    ) -> None:
        self._service = service
        self._actor = Actor.system(source)
        self._domain = normalize_hostname(canonical_domain, wildcard_ok=False)
        self._tls = tls

    def register(self, route: ToolRoute) -> None:
        self._service.register_tool_route(self._actor, self._spec(route), tls=self._tls)

    def unregister(self, tool: str, pattern: str) -> None:
        self._service.unregister_tool_route(self._actor, tool, self._hostname(tool), pattern)

    def resync(self, routes: Collection[ToolRoute]) -> None:
        specs = []
        for route in routes:
            try:
                specs.append(self._spec(route))
            except ValidationError as exc:
                log.warning("%s route of %r refused: %s", self._actor.source, route.tool, exc)
        result = self._service.resync_tool_routes(self._actor, specs, tls=self._tls)
        for tool, why in result.refused:
            log.warning("%s routes of tool %s refused: %s", self._actor.source, tool, why)

    def tool_for_token(self, secret: str) -> str:
        """The project of a member token, which must be a tool's name."""
        actor = self._service.authenticate(secret)
        tool = actor.project
        if tool is None or not actor.role.can_write or not is_tool_name(tool):
            raise AuthError("the token is not a member token of a tool's project")
        return tool

    def _hostname(self, tool: str) -> str:
        if not is_tool_name(tool):
            raise ValidationError(
                f"tool name {tool[:64]!r} is not one DNS label (a-z, 0-9, '-')", field="tool"
            )
        return f"{tool}.{self._domain}"

    def _spec(self, route: ToolRoute) -> ToolRouteSpec:
        destination = route.destination
        if destination.scheme not in ("http", "https"):  # the parser knows no other
            raise ValidationError(
                f"destination {destination.text!r}: only http:// and https:// are supported",
                field="destination",
            )
        return ToolRouteSpec(
            tool=route.tool,
            hostname=self._hostname(route.tool),
            pattern=route.pattern,
            address=destination.host,
            port=destination.port,
            tls=destination.scheme == "https",  # served over TLS (docs/dataplane.md)
            canonical=route.canonical,
        )
