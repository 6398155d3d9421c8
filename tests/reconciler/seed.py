"""What the reconciler tests write first: an admin actor with a project ``alpha``, and
proxy drafts for the service to create."""

from __future__ import annotations

from portway.model import Proxy
from portway.service import Actor, Service


def admin(service: Service) -> Actor:
    secret = service.ensure_admin_token(None)
    assert secret is not None
    actor = service.authenticate(secret)
    service.create_project(actor, "alpha")
    return actor


def draft(hostname: str, prefix: str = "/") -> Proxy:
    return Proxy(id="", project="", hostname=hostname, path_prefix=prefix)
