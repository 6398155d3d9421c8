"""What a Toolforge-style source asks of Portway: a tool's routes, by pattern.

Both Toolforge sources speak in these terms: the 8282 listener (one change per
connection) and the Kubernetes watcher (changes, and a full resync on every relist).
An implementation is bound to one source's name, so ``resync`` replaces only what that
source made and never touches what the API or another source created.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from portway.protocol.registration import Destination


@dataclass(frozen=True, slots=True)
class ToolRoute:
    """``pattern`` (a route regex, RE2) of ``tool`` goes to ``destination``."""

    tool: str
    pattern: str
    destination: Destination
    canonical: bool = False


class ToolRoutes(Protocol):
    """Each call is one service transaction; refusals are ``PortwayError``s."""

    def register(self, route: ToolRoute) -> None: ...

    def unregister(self, tool: str, pattern: str) -> None: ...

    def resync(self, routes: Collection[ToolRoute]) -> None:
        """Make this source's routes exactly ``routes``."""
        ...

    def tool_for_token(self, secret: str) -> str:
        """The tool whose project the token belongs to (member role), or AuthError."""
        ...
