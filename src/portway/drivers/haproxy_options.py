"""How the operator runs HAProxy: listeners, certificates, trust and process knobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from portway.model.listen_policy import ListenPolicy


@dataclass(frozen=True, kw_only=True, slots=True)
class HaproxyOptions:
    """Every field is the operator's, never a tenant's. Paths are absolute: HAProxy's
    master re-executes itself on a reload, so nothing may depend on its directory."""

    conf_dir: str = "/tmp/portway-haproxy/conf"  # where the rendered files live
    run_dir: str = "/tmp/portway-haproxy/run"  # pid file and the stats socket
    http: tuple[tuple[str, int], ...] = (("127.0.0.1", 8080),)
    https: tuple[tuple[str, int], ...] = ()
    # One PEM holding the default chain and key (the driver writes it into the tree).
    default_certificate: bool = False
    trusted_proxies: tuple[str, ...] = ()
    forwarded_for: bool = True  # the client's address for proxies that inherit it
    threads: int | None = None  # nbthread; None: HAProxy's default (one per CPU)
    maxconn: int | None = None  # None: HAProxy derives it from the file-descriptor limit
    passive_failures: int = 3  # refused connections in a row that mark a member down
    spare_slots: int = 4  # disabled servers per backend, so members can be added live
    hard_stop_after: float | None = 60.0  # how long an old worker may finish after a reload
    client_timeout: float = 75.0  # idle client keep-alive and slow clients
    header_timeout: float = 10.0  # timeout http-request (slowloris guard → 408)
    upstream_ca_file: str | None = None  # --upstream-ca-file: verify TLS backends by it
    # --rate-limit/--rate-burst for proxies without limits.rate, --rate-limit-clients,
    # --deny-client (haproxy_limits); taken at start, as every data-plane flag.
    rate_limit: float = 0.0
    rate_burst: int = 0
    rate_limit_clients: int = 100_000
    deny_clients: tuple[str, ...] = ()
    # --haproxy-cache-memory: MiB for all proxies' caches together (haproxy_cache).
    cache_memory: int = 1024
    # --listen-ports: which ports of their own proxies may be served on (haproxy_ports).
    listen_policy: ListenPolicy = field(default_factory=ListenPolicy)
    # The tier's TLS session-ticket keys as HAProxy's ``tls-ticket-keys`` file text
    # (drivers/ticket_files.py); empty: HAProxy's own keys.
    ticket_keys: str = ""
