"""The one exception tree of Portway.

    PortwayError
     ├── ValidationError        bad input: a field breaks a rule         (API 400/422)
     │    └── RefusedAddressError  the backend policy refuses an address (API 422, proxy 502)
     ├── NotFoundError          no such object, or not visible to caller (API 404)
     ├── ConflictError          the object exists or a name is taken     (API 409)
     ├── AuthError              missing or bad credentials               (API 401)
     ├── ForbiddenError         credentials valid, action not allowed    (API 403)
     │    └── QuotaExceededError   a create over the project's quota      (API 403)
     ├── StoreError             the store failed (translated from SQLAlchemy/psycopg)
     ├── DependencyError        a service Portway relies on failed       (API 503, or 502)
     │    ├── DnsError             the authoritative DNS server (dnspython)
     │    └── KeystoneError        Keystone, when validating tokens (httpx)
     ├── ConfigError            bad static configuration or flags
     └── ProtocolError          a peer broke HTTP framing rules (data plane)
          ├── LocalProtocolError   our side cannot send what was asked
          └── RemoteProtocolError  the peer sent something we refuse

Lower layers' exceptions (sqlite3, psycopg, httptools, ssl) are translated into this
tree at the layer that calls them, so callers only ever catch ``PortwayError``.
"""

from __future__ import annotations


class PortwayError(Exception):
    """Root of every error Portway raises on purpose."""

    status: int = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(PortwayError):
    """Input breaks a rule; ``field`` names the offending field when there is one."""

    status = 422


class MalformedError(ValidationError):
    """Input cannot be read at all (bad JSON, wrong type): HTTP 400."""

    status = 400


class RefusedAddressError(ValidationError):
    """A backend address the operator's backend policy refuses (see model.backend_policy)."""


class NotFoundError(PortwayError):
    status = 404


class ConflictError(PortwayError):
    status = 409


class AuthError(PortwayError):
    status = 401


class ForbiddenError(PortwayError):
    status = 403


class QuotaExceededError(ForbiddenError):
    """A write would take a project past one of its quotas (model/quota.py); the API
    shows ``quota``, ``limit`` and ``in_use`` beside the message, as Octavia does."""

    def __init__(self, *, project: str, quota: str, limit: int, in_use: int) -> None:
        super().__init__(
            f"quota {quota} of project {project} exceeded: limit {limit}, in use {in_use}",
            field=quota,
        )
        self.project = project
        self.quota = quota
        self.limit = limit
        self.in_use = in_use


class StoreError(PortwayError):
    status = 503


class DependencyError(PortwayError):
    """A service Portway relies on cannot be reached (503) or answered with an error
    (502). Never a reason to accept a request: the call fails, and nothing is kept."""

    status = 503

    def __init__(self, message: str, *, status: int = 503, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status


class DnsError(DependencyError):
    """The DNS server could not be reached, or refused an update or a query."""


class KeystoneError(DependencyError):
    """Keystone could not be reached, or refused Portway's own service credentials."""


class ConfigError(PortwayError):
    status = 500


class ProtocolError(PortwayError):
    """HTTP framing violation; ``status`` is the response the proxy should send."""

    status = 400

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(ProtocolError):
    """Our side asked for something the protocol cannot express."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that cannot be framed unambiguously."""
