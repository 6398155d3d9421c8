"""Pure domain objects: frozen, keyword-only, validated, with no I/O or serialization."""

from portway.model.certificate import Certificate
from portway.model.hostname import normalize_hostname, normalize_path_prefix
from portway.model.project import Change, Project, Role, Token, Zone
from portway.model.proxy import (
    ALGORITHMS,
    Backend,
    CacheKey,
    CacheSettings,
    HealthCheck,
    Limits,
    Privacy,
    Proxy,
    PurgeSettings,
    Rewrite,
    SessionPersistence,
    StreamSettings,
    Timeouts,
    TlsSettings,
    ToolSettings,
)

__all__ = [
    "ALGORITHMS",
    "Backend",
    "CacheKey",
    "CacheSettings",
    "Certificate",
    "Change",
    "HealthCheck",
    "Limits",
    "Privacy",
    "Project",
    "Proxy",
    "PurgeSettings",
    "Rewrite",
    "Role",
    "SessionPersistence",
    "StreamSettings",
    "Timeouts",
    "TlsSettings",
    "Token",
    "ToolSettings",
    "Zone",
    "normalize_hostname",
    "normalize_path_prefix",
]
