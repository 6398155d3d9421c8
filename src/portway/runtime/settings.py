"""Every ``portway serve`` setting, in one table.

Each row gives a setting's config-file key, type, default, help and whether SIGHUP can
change it on a running node. The flag (``--key-with-dashes``), the environment variable
(``PORTWAY_KEY``), the TOML key, ``--help``, ``--check-config`` output and the docs
check are all derived from the row. A value is taken from, highest first: the command
line, the environment, the config file, the row's default.

A row's key names the field it fills: a ``DataPlaneSettings`` field when there is one of
that name, else a ``ServeConfig`` field (``field`` says otherwise). Adding a setting:

1. one row here, e.g. ``Setting("metrics", str, "", "Metrics listener, HOST:PORT.",
   parse=parse_optional_listen, metavar="HOST:PORT")``; a repeatable CIDR list is
   ``Setting("backend_allow", tuple, (), "...", parse=parse_cidrs, metavar="CIDR")``;
2. the field it fills, with its type after ``parse``;
3. ``live=True`` only if its consumer reads it at use time, or ``DataPlane.reconfigure``
   / ``Reloader`` apply it; else it waits for a restart;
4. its row in docs/running.md's table and the new ``portway serve --check-config``
   output as the example there (tests/docs fails until both are in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from portway.auth import defaults as keystone_defaults
from portway.auth.config import parse_keystone_url
from portway.dataplane.settings import DataPlaneSettings
from portway.dns import defaults as dns_defaults
from portway.dns.config import (
    parse_addresses,
    parse_algorithm,
    parse_dns_server,
    parse_owner,
    parse_zones,
)
from portway.errors import ConfigError
from portway.model.quota import QUOTA_NAMES, UNLIMITED
from portway.runtime.config import (
    parse_api_url,
    parse_backend_url,
    parse_cidrs,
    parse_client_id,
    parse_endpoint_types,
    parse_healthz_path,
    parse_listen,
    parse_listen_ports,
    parse_node_name,
    parse_optional_listen,
    parse_optional_zone,
    parse_plane_kind,
    parse_stomp_url,
    parse_switch,
    parse_user_prefix,
    parse_zone,
)

Value = str | int | float | tuple[str, ...]  # what a flag, variable or TOML key holds
Parser = Callable[..., Any]  # parse(value, flag=label) → the config value, or ConfigError

_DATAPLANE_FIELDS = frozenset(f.name for f in fields(DataPlaneSettings))


def as_path(value: str, *, flag: str) -> Path:
    return Path(value)


def empty_is_none(value: str, *, flag: str) -> str | None:
    return value or None


def path_or_none(value: str, *, flag: str) -> Path | None:
    return Path(value) if value else None


def parse_rotation(value: float, *, flag: str) -> float:
    # Under a second, every node would rewrite the table several times a second.
    if value != 0 and value < 1:
        raise ConfigError(f"{flag}: 0 (off) or at least 1 second, got {value}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting. ``kind`` is str, int, float or tuple (a list of strings, whose flag
    may be repeated); ``low``/``high`` bound numbers; ``parse`` turns the checked value
    into what the config holds (default: as is)."""

    key: str
    kind: type
    default: Value
    help: str
    live: bool = False
    parse: Parser | None = None
    low: float | None = None
    high: float | None = None
    metavar: str = ""
    flag_name: str = ""  # when the flag is not --key-with-dashes
    field: str = ""  # when the field is not named like the key
    default_text: str = ""  # what --help and the docs show as the default, if not the value

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.key.replace("_", "-")

    @property
    def envvar(self) -> str:
        return "PORTWAY_" + self.key.upper()

    @property
    def target(self) -> str:
        return self.field or self.key

    @property
    def dataplane(self) -> bool:
        """Whether the value lands in DataPlaneSettings (else in ServeConfig)."""
        return self.target in _DATAPLANE_FIELDS

    def convert(self, value: Value, *, flag: str) -> Any:
        return value if self.parse is None else self.parse(value, flag=flag)


_DP = DataPlaneSettings()
LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_log_level(value: str, *, flag: str) -> str:
    level = value.lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{flag}: expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


def _tunable(key: str, help: str, *, live: bool = True, metavar: str = "") -> Setting:
    """A DataPlaneSettings field: its default comes from the dataclass."""
    default = getattr(_DP, key)
    if isinstance(default, int):
        return Setting(key, int, default, help, live=live, low=1, metavar=metavar or "N")
    return Setting(key, float, default, help, live=live, low=0.001, metavar="SECONDS")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        str,
        "var/portway",
        "State directory: SQLite database, generated CA and certificates.",
        parse=as_path,
        metavar="DIR",
    ),
    Setting(
        "http",
        str,
        "127.0.0.1:8080",
        "HTTP data-plane listener, HOST:PORT.",
        parse=parse_listen,
        metavar="HOST:PORT",
    ),
    Setting(
        "https",
        str,
        "127.0.0.1:8443",
        "HTTPS data-plane listener, HOST:PORT; an empty value disables HTTPS.",
        parse=parse_optional_listen,
        metavar="HOST:PORT",
    ),
    Setting(
        "default_zone",
        str,
        "portway.test",
        "Zone of the default wildcard certificate made by the local CA on first start.",
        parse=parse_zone,
        metavar="ZONE",
    ),
    Setting(
        "api",
        str,
        "127.0.0.1:5668",
        "REST API listener, HOST:PORT.",
        parse=parse_listen,
        metavar="HOST:PORT",
    ),
    Setting(
        "workers",
        int,
        0,
        "Data-plane worker processes sharing the listeners (0: run it in this process).",
        low=0,
        high=256,
        metavar="N",
    ),
    Setting(
        "worker_nice",
        int,
        5,
        "How much lower the worker processes' scheduling priority is than the control "
        "process's (added to their nice value): on a saturated node the API and the "
        "reconciler, which publish every change, still get the CPU when they need it.",
        low=0,
        high=19,
        metavar="N",
    ),
    Setting(
        "dataplane",
        str,
        "builtin",
        "What serves the traffic: builtin (Portway's own), nginx or haproxy (driven "
        "from the snapshots; see docs/dataplanes.md).",
        parse=parse_plane_kind,
        field="plane_kind",
        metavar="KIND",
    ),
    Setting(
        "nginx_binary",
        str,
        "nginx",
        "The nginx executable (--dataplane nginx).",
        metavar="PATH",
    ),
    Setting(
        "nginx_prefix",
        str,
        "",
        "nginx's own tree: conf/, logs/, run/, temp/ (default: <data dir>/nginx).",
        parse=path_or_none,
        metavar="DIR",
        default_text="<data dir>/nginx",
    ),
    Setting(
        "nginx_external",
        str,
        "off",
        "on: drive an nginx the operator runs (write, nginx -t, nginx -s reload) instead "
        "of starting and supervising one.",
        parse=parse_switch,
        metavar="SWITCH",
    ),
    Setting(
        "haproxy_binary",
        str,
        "haproxy",
        "The HAProxy executable (--dataplane haproxy).",
        metavar="PATH",
    ),
    Setting(
        "haproxy_prefix",
        str,
        "",
        "HAProxy's own tree: conf/, logs/, run/ with the master and stats sockets "
        "(default: <data dir>/haproxy).",
        parse=path_or_none,
        metavar="DIR",
        default_text="<data dir>/haproxy",
    ),
    Setting(
        "haproxy_external",
        str,
        "off",
        "on: drive an HAProxy the operator runs (write, haproxy -c, reload and Runtime "
        "API through its sockets) instead of starting and supervising one.",
        parse=parse_switch,
        metavar="SWITCH",
    ),
    Setting(
        "haproxy_cache_memory",
        int,
        1024,
        "MiB HAProxy's caches of all proxies may take together (taken in full at load); "
        "past it a proxy is served without a cache. 0: none.",
        low=0,
        high=1_000_000,
        metavar="MIB",
    ),
    Setting(
        "store",
        str,
        "",
        "SQLAlchemy URL of the store; default SQLite in the data dir "
        "(postgresql+psycopg://user@host/db for several nodes).",
        parse=empty_is_none,
        metavar="URL",
        field="store_url",
        default_text="SQLite in the data dir",
    ),
    Setting(
        "node_name",
        str,
        "",
        "This node's name in 'portway node list' (each node of a tier its own).",
        parse=parse_node_name,
        metavar="NAME",
        default_text="the host name",
    ),
    Setting(
        "node_report_interval",
        float,
        5.0,
        "Seconds between this node's reports of itself to the store; a node silent for "
        "three of them is shown as lost.",
        low=0.1,
        metavar="SECONDS",
    ),
    Setting(
        "tls_ticket_rotation",
        float,
        3600.0,
        "Seconds each TLS session-ticket key encrypts before the next takes over; the keys "
        "live in the store, shared by every worker and node, and each still decrypts for "
        "two more intervals (0: each process keeps OpenSSL's own keys).",
        parse=parse_rotation,
        low=0,
        metavar="SECONDS",
    ),
    Setting(
        "secret_key_file",
        str,
        "",
        "Mode-0600 file of the keys that encrypt tenants' private keys in the store "
        "(default DATA_DIR/secret.key, made on first start; with PostgreSQL make it with "
        "'portway keys add' and give every node a copy).",
        parse=path_or_none,
        metavar="PATH",
        default_text="DATA_DIR/secret.key",
    ),
    Setting(
        "trusted_proxies",
        tuple,
        (),
        "CIDR whose X-Forwarded-*/Forwarded headers are kept and appended to (repeatable).",
        live=True,
        parse=parse_cidrs,
        metavar="CIDR",
        flag_name="--trusted-proxy",
    ),
    Setting(
        "forwarded_for",
        str,
        "on",
        "Send the client's address to backends (X-Forwarded-For, Forwarded: for=) for "
        "proxies whose privacy.forwarded_for is inherit.",
        live=True,
        parse=parse_switch,
        metavar="SWITCH",
    ),
    Setting(
        "drain_timeout",
        float,
        10.0,
        "Seconds in-flight requests get to finish after SIGTERM.",
        low=0,
        metavar="SECONDS",
    ),
    Setting(
        "access_log",
        str,
        "",
        "Write one JSON line per request to this file ('-': standard output; "
        "empty: no access log). SIGHUP reopens it.",
        live=True,
        parse=empty_is_none,
        metavar="PATH",
    ),
    Setting(
        "metrics",
        str,
        "127.0.0.1:9568",
        "Prometheus /metrics listener, HOST:PORT; an empty value turns it off "
        "(the API's /metrics then still answers admin tokens).",
        parse=parse_optional_listen,
        metavar="HOST:PORT",
    ),
    Setting(
        "backend_allow",
        tuple,
        (),
        "CIDR backends may use (repeatable); when given, only these. Loopback is refused "
        "unless named, e.g. 127.0.0.0/8.",
        parse=parse_cidrs,
        metavar="CIDR",
    ),
    Setting(
        "backend_deny",
        tuple,
        (),
        "CIDR backends may not use (repeatable); wins over --backend-allow.",
        parse=parse_cidrs,
        metavar="CIDR",
    ),
    Setting(
        "rate_limit",
        float,
        _DP.rate_limit,
        "Requests a second per client address on proxies without limits.rate (over it: "
        "429); 0: no limit. Counted per worker.",
        live=True,
        low=0,
        high=1_000_000,
        metavar="N",
    ),
    Setting(
        "rate_burst",
        int,
        _DP.rate_burst,
        "Requests back to back within --rate-limit; 0: one second's worth.",
        live=True,
        low=0,
        high=1_000_000,
        metavar="N",
    ),
    Setting(
        "rate_limit_clients",
        int,
        _DP.rate_limit_clients,
        "Client buckets kept per rate-limited proxy and worker; past it the least "
        "recently seen client's goes.",
        low=1,
        high=10_000_000,
        metavar="N",
    ),
    Setting(
        "deny_clients",
        tuple,
        _DP.deny_clients,
        "CIDR whose clients get 403 on every proxy (repeatable).",
        live=True,
        parse=parse_cidrs,
        metavar="CIDR",
        flag_name="--deny-client",
    ),
    *(
        Setting(
            f"quota_{name}",
            int,
            UNLIMITED,
            f"Default quota {name} of a project without its own (-1: unlimited).",
            low=UNLIMITED,
            metavar="N",
        )
        for name in QUOTA_NAMES
    ),
    Setting(
        "listen_ports",
        tuple,
        (),
        "Extra ports tenants' proxies may claim, PORT, LOW-HIGH or ADDRESS:PORT[-HIGH] "
        "(repeatable or comma-separated; default address: --http's); opened on demand.",
        parse=parse_listen_ports,
        metavar="PORTS",
    ),
    _tunable("connect_timeout", "Ceiling on connecting to a backend (seconds; → 502)."),
    Setting(
        "upstream_ca_file",
        str,
        "",
        "CA bundle that TLS backends' certificates must chain to, for their address; "
        "empty: TLS backends are encrypted but not verified (as nginx's default).",
        parse=path_or_none,
        metavar="PATH",
    ),
    _tunable("read_timeout", "Ceiling on waiting for backend bytes (seconds; → 504)."),
    _tunable("client_header_timeout", "Time a client has to send a request head (→ 408)."),
    _tunable("keepalive_timeout", "Idle time before a client keep-alive is closed."),
    _tunable("max_request_line", "Longest request line in bytes (→ 414).", metavar="BYTES"),
    _tunable("max_header_bytes", "Largest request head in bytes (→ 431).", metavar="BYTES"),
    _tunable(
        "upstream_pool_size",
        "Idle keep-alive connections per backend kept after a second without use.",
        live=False,
    ),
    _tunable("max_connections", "Client connections per listener and data plane; more get 503."),
    _tunable("passive_failures", "Consecutive failures/5xx that eject a backend.", live=False),
    _tunable("passive_backoff", "First ejection period (seconds); doubles on repeats.", live=False),
    _tunable("passive_max_backoff", "Longest ejection period (seconds).", live=False),
    Setting(
        "passive_max_ejection_percent",
        int,
        _DP.passive_max_ejection_percent,
        "Most of a proxy's backends passive checks may eject (%); never its last healthy one.",
        low=0,
        high=100,
        metavar="PERCENT",
    ),
    Setting(
        "healthz_path",
        str,
        "",
        "Path the data plane answers with 200 on every host (503 while draining), for a "
        "load balancer in front of the tier; it shadows that path of every proxy.",
        parse=parse_healthz_path,
        live=True,
        metavar="PATH",
    ),
    Setting(
        "log_level",
        str,
        "info",
        "Log level of the control process: debug, info, warning or error.",
        live=True,
        parse=parse_log_level,
        metavar="LEVEL",
    ),
    Setting(
        "openshift_stomp",
        str,
        "",
        "OpenShift routing events: stomp://[USER[:PASSWORD]@]HOST[:PORT]/queue/NAME "
        "(or /topic/NAME, as a durable subscription); empty: off.",
        parse=parse_stomp_url,
        metavar="URL",
    ),
    Setting(
        "openshift_stomp_password_file",
        str,
        "",
        "File holding the STOMP password (instead of one in the URL).",
        parse=path_or_none,
        metavar="PATH",
    ),
    Setting(
        "openshift_domain",
        str,
        "",
        "OpenShift cloud domain: each application is routed as ha-APP-NAMESPACE.DOMAIN.",
        parse=parse_optional_zone,
        metavar="DOMAIN",
    ),
    Setting(
        "openshift_endpoint_types",
        tuple,
        ("load_balancer",),
        "Endpoint types routed (repeatable or comma-separated); others are ignored.",
        parse=parse_endpoint_types,
        metavar="TYPE",
    ),
    Setting(
        "openshift_client_id",
        str,
        "",
        "STOMP client-id and durable subscription name (default: portway-HOSTNAME).",
        parse=parse_client_id,
        metavar="ID",
    ),
    # [toolforge]: the 8282 registration protocol, tool routing, /list (docs/toolforge.md).
    Setting(
        "toolforge_listen",
        str,
        "",
        "Toolforge registration listener (the 8282 protocol), HOST:PORT; empty: off.",
        parse=parse_optional_listen,
        metavar="HOST:PORT",
    ),
    Setting(
        "toolforge_identd_port",
        int,
        113,
        "Port of the identd (RFC 1413) asked who a registering client is.",
        low=1,
        high=65535,
        metavar="PORT",
    ),
    Setting(
        "toolforge_user_prefix",
        str,
        "tools",
        "Tool accounts are Unix users PREFIX.TOOL; other users are refused.",
        parse=parse_user_prefix,
        metavar="PREFIX",
    ),
    Setting(
        "toolforge_canonical_domain",
        str,
        "",
        "Tools are routed as TOOL.DOMAIN by their registered patterns; empty: off.",
        parse=parse_optional_zone,
        metavar="DOMAIN",
    ),
    Setting(
        "toolforge_legacy_domain",
        str,
        "",
        "Legacy domain routing DOMAIN/TOOL/... (307 for canonical tools); empty: none.",
        parse=parse_optional_zone,
        metavar="DOMAIN",
    ),
    Setting(
        "toolforge_default_backend",
        str,
        "",
        "http://HOST:PORT that gets what no tool answers on the Toolforge domains; empty: 404.",
        parse=parse_backend_url,
        metavar="URL",
    ),
    Setting(
        "toolforge_list",
        str,
        "",
        "Listener of GET /list (the tools that have routes), HOST:PORT; empty: off.",
        parse=parse_optional_listen,
        metavar="HOST:PORT",
    ),
    Setting(
        "kubernetes_api",
        str,
        "",
        "Kubernetes API server whose Services become tool routes, https://HOST[:PORT]; empty: off.",
        parse=parse_api_url,
        metavar="URL",
    ),
    Setting(
        "kubernetes_token_file",
        str,
        "",
        "File holding the bearer token of the Service watcher (re-read on each connect).",
        parse=path_or_none,
        metavar="PATH",
    ),
    Setting(
        "kubernetes_ca_file",
        str,
        "",
        "CA bundle that signed the API server's certificate (default: the system's).",
        parse=path_or_none,
        metavar="PATH",
    ),
    Setting(
        "kubernetes_label_selector",
        str,
        "tools.wmflabs.org/webservice=true",
        "Label selector of the Services that are routed.",
        metavar="SELECTOR",
    ),
    # [dns]: records of the served hostnames on an authoritative server (RFC 2136).
    # The table has no groups, so these are flat keys named dns_*.
    Setting(
        "dns_server",
        str,
        "",
        "Authoritative DNS server for RFC 2136 updates, IP[:PORT]; empty: no DNS records.",
        parse=parse_dns_server,
        metavar="IP:PORT",
    ),
    Setting(
        "dns_zones",
        tuple,
        (),
        "Zone whose hostnames get DNS records (repeatable); others are left alone.",
        parse=parse_zones,
        metavar="ZONE",
        flag_name="--dns-zone",
    ),
    Setting("dns_tsig_name", str, "", "Name of the TSIG key signing DNS updates.", metavar="NAME"),
    Setting(
        "dns_tsig_algorithm",
        str,
        dns_defaults.ALGORITHM,
        "Algorithm of the TSIG key.",
        parse=parse_algorithm,
        metavar="ALGORITHM",
    ),
    Setting(
        "dns_tsig_secret_file",
        str,
        "",
        "File holding the TSIG secret (base64), or the key clause tsig-keygen writes.",
        parse=path_or_none,
        metavar="PATH",
    ),
    Setting(
        "dns_addresses",
        tuple,
        (),
        "Address the records point at: IPv4 for A, IPv6 for AAAA (repeatable).",
        parse=parse_addresses,
        metavar="IP",
        flag_name="--dns-address",
    ),
    Setting(
        "dns_ttl",
        int,
        dns_defaults.TTL,
        "TTL of the records Portway writes.",
        low=1,
        metavar="SECONDS",
    ),
    Setting(
        "dns_owner",
        str,
        dns_defaults.OWNER,
        "Owner in the TXT marker beside each record; one value per Portway cluster.",
        parse=parse_owner,
        metavar="ID",
    ),
    Setting(
        "dns_timeout",
        float,
        dns_defaults.TIMEOUT,
        "Seconds the DNS server has to answer (→ 503).",
        low=0.1,
        metavar="SECONDS",
    ),
    Setting(
        "dns_check_interval",
        float,
        dns_defaults.CHECK_INTERVAL,
        "Seconds between checks of the DNS records (re-creates missing ones); 0: none.",
        low=0,
        metavar="SECONDS",
    ),
    # [keystone]: X-Auth-Token validated against Keystone, beside Portway's own tokens.
    Setting(
        "keystone_url",
        str,
        "",
        "Keystone's auth URL (https://host:5000 or .../v3); empty: Portway's tokens only.",
        parse=parse_keystone_url,
        metavar="URL",
    ),
    Setting(
        "keystone_user",
        str,
        "",
        "Portway's service user in Keystone, which validates tokens.",
        metavar="NAME",
    ),
    Setting(
        "keystone_password_file",
        str,
        "",
        "File holding the service user's password.",
        parse=path_or_none,
        metavar="PATH",
    ),
    Setting(
        "keystone_project",
        str,
        keystone_defaults.PROJECT,
        "Project the service user's token is scoped to.",
        metavar="NAME",
    ),
    Setting(
        "keystone_user_domain",
        str,
        keystone_defaults.DOMAIN,
        "Domain (name) of the service user.",
        metavar="NAME",
    ),
    Setting(
        "keystone_project_domain",
        str,
        keystone_defaults.DOMAIN,
        "Domain (name) of the service user's project.",
        metavar="NAME",
    ),
    Setting(
        "keystone_cafile",
        str,
        "",
        "CA bundle for Keystone's certificate; empty: the system's.",
        parse=path_or_none,
        metavar="PATH",
    ),
    Setting(
        "keystone_cache_ttl",
        float,
        keystone_defaults.CACHE_TTL,
        "Seconds a validated token is trusted without asking Keystone (never past expiry).",
        low=0,
        high=300,
        metavar="SECONDS",
    ),
    Setting(
        "keystone_cache_size",
        int,
        keystone_defaults.CACHE_SIZE,
        "Validated tokens kept in the cache.",
        low=0,
        high=1_000_000,
        metavar="N",
    ),
    Setting(
        "keystone_timeout",
        float,
        keystone_defaults.TIMEOUT,
        "Seconds Keystone has to answer (→ 503).",
        low=0.1,
        metavar="SECONDS",
    ),
)

BY_KEY = {s.key: s for s in SETTINGS}
