"""The API's token check as the node's settings make it, and Keystone projects made
Portway projects on first use.

Without ``[keystone]`` the API checks Portway's own tokens (the Service). With it, a
``TokenChain``: Portway's tokens first (they keep working while Keystone is down), then
Keystone's, whose project (by id, what the catalog's ``$(tenant_id)s`` puts in the URL)
becomes a Portway project the first time one of its tokens is seen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from portway.auth.config import keystone_config
from portway.auth.tokens import TokenChain, TokenValidator
from portway.errors import ConflictError, NotFoundError
from portway.runtime.config import ServeConfig
from portway.service import Actor, Service

PROVISIONER = "keystone"  # the change log's actor for projects made on first use


class FirstUseProjects:
    """A ``TokenValidator`` that makes sure the project of each actor ``inner`` accepts
    exists in Portway, creating it if not."""

    def __init__(self, inner: TokenValidator, service: Service) -> None:
        self.inner = inner
        self.service = service
        self._system = Actor.system(PROVISIONER)

    def authenticate(self, secret: str | None) -> Actor:
        actor = self.inner.authenticate(secret)
        if actor.project is not None:
            self._ensure(actor.project)
        return actor

    def _ensure(self, project: str) -> None:
        try:
            self.service.get_project(self._system, project)
        except NotFoundError:
            with contextlib.suppress(ConflictError):  # another request made it first
                self.service.create_project(self._system, project)


def api_tokens(config: ServeConfig, service: Service) -> tuple[TokenValidator, Callable[[], None]]:
    """The API's token check for ``config`` and what closes it at shutdown."""
    settings = keystone_config(config)
    if settings is None:
        return service, lambda: None
    from portway.auth.keystone import KeystoneTokens  # the HTTP client only when needed

    keystone = KeystoneTokens(settings)
    return TokenChain(service, FirstUseProjects(keystone, service)), keystone.close
