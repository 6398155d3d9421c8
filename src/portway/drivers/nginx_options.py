"""How the operator runs nginx: listeners, certificates, trust and process knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from portway.model.listen_policy import ListenPolicy

# Debian's libnginx-mod-stream: nginx's stream {} (tcp and tls-passthrough ports).
STREAM_MODULE: Final = "/usr/lib/nginx/modules/ngx_stream_module.so"
# Debian's libnginx-mod-http-cache-purge (2.3): proxy_cache_purge, for cache.enabled.
CACHE_PURGE_MODULE: Final = "/usr/lib/nginx/modules/ngx_http_cache_purge_module.so"


@dataclass(frozen=True, kw_only=True, slots=True)
class NginxOptions:
    """How the operator runs nginx; every field is the operator's, never a tenant's."""

    http: tuple[tuple[str, int], ...] = (("127.0.0.1", 8080),)
    https: tuple[tuple[str, int], ...] = ()
    default_certificate: tuple[str, str] | None = None  # chain and key paths
    trusted_proxies: tuple[str, ...] = ()
    forwarded_for: bool = True  # the client's address for proxies that inherit it
    control_socket: str = "run/ctl.sock"  # unix socket answering the applied generation
    worker_processes: str = "auto"
    worker_connections: int = 4096
    user: str | None = None
    access_log: bool = False
    passive_failures: int = 3  # nginx max_fails
    passive_backoff: float = 10.0  # nginx fail_timeout, seconds
    upstream_keepalive: int = 32
    shutdown_timeout: float | None = None  # old workers' grace after a reload
    keepalive_timeout: float = 75.0  # idle client keep-alive (--keepalive-timeout)
    # Requests per client connection before nginx closes it (its default, 1000, would cost
    # a TLS client a new handshake every 1000 requests; the built-in plane has no limit).
    keepalive_requests: int = 100_000
    upstream_ca_file: str | None = None  # --upstream-ca-file: verify TLS backends by it
    # --listen-ports: which ports of their own proxies may be served on.
    listen_policy: ListenPolicy = field(default_factory=ListenPolicy)
    # The stream module's file, loaded when a tcp or tls-passthrough port is rendered;
    # None: not installed (the driver checks the file), such ports are refused.
    stream_module: str | None = STREAM_MODULE
    # The cache purge module's file, loaded when a caching proxy is rendered; None: not
    # installed (the driver checks the file), proxies with cache.enabled are refused.
    cache_purge_module: str | None = CACHE_PURGE_MODULE
    # Why this node cannot cache at all (the driver's check of the cache directory);
    # None: it can. Proxies with cache.enabled are refused with it.
    cache_refused: str | None = None
    client_header_timeout: float = 10.0  # a passthrough port's wait for the ClientHello
    # The tier's TLS session-ticket key files (80 bytes each: name, HMAC key, AES key, as
    # nginx reads them), the one that encrypts first; empty: nginx's own keys.
    ticket_keys: tuple[str, ...] = ()
