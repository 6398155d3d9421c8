"""The configuration of ``portway serve`` and the parsers of its values.

The settings table (runtime/settings.py) says where each field comes from."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from portway.auth import defaults as keystone_defaults
from portway.dataplane.settings import DataPlaneSettings
from portway.dns import defaults as dns_defaults
from portway.errors import ConfigError, PortwayError
from portway.model.backend_policy import BackendPolicy
from portway.model.listen_policy import ListenPolicy, PortRange, parse_ranges
from portway.model.quota import QUOTA_NAMES, UNLIMITED, Quota


@dataclass(frozen=True, kw_only=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, kw_only=True, slots=True)
class TlsListen:
    """The HTTPS listener and the default certificate served when no other matches."""

    listen: Listen
    chain: Path
    key: Path


@dataclass(frozen=True, kw_only=True, slots=True)
class StompUrl:
    """``stomp://[user[:password]@]host[:port]/queue/name`` (or ``/topic/name``)."""

    host: str
    port: int
    destination: str  # "/queue/<name>" or "/topic/<name>"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def topic(self) -> bool:
        """A topic keeps events for an absent consumer only in a durable subscription."""
        return self.destination.startswith("/topic/")

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"stomp://{user}{host}:{self.port}{self.destination}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeConfig:
    data_dir: Path
    http: Listen
    api: Listen
    https: Listen | None = None  # None: no HTTPS listener
    default_zone: str = "portway.test"  # the default certificate covers *.zone and zone
    workers: int = 0
    worker_nice: int = 5  # --worker-nice: added to the workers' nice value
    plane_kind: str = "builtin"  # --dataplane: builtin, nginx or haproxy
    nginx_binary: str = "nginx"
    nginx_prefix: Path | None = None  # None: <data dir>/nginx
    nginx_external: bool = False  # drive an nginx the operator runs (nginx -s reload)
    haproxy_binary: str = "haproxy"
    haproxy_prefix: Path | None = None  # None: <data dir>/haproxy
    haproxy_external: bool = False  # drive an HAProxy the operator runs (its sockets)
    haproxy_cache_memory: int = 1024  # MiB for all proxies' HAProxy caches together
    store_url: str | None = None
    node_name: str = ""  # "": this machine's host name (see ``name_of_node``)
    node_report_interval: float = 5.0
    tls_ticket_rotation: float = 3600.0  # 0: per-process ticket keys (OpenSSL's own)
    dataplane: DataPlaneSettings = field(default_factory=DataPlaneSettings)
    access_log: str | None = None  # a path, "-" for standard output, None for none
    drain_timeout: float = 10.0
    admin_token: str | None = None
    log_level: str = "info"
    # Prometheus exporters' habit: a listener of their own, here on loopback by default.
    metrics: Listen | None = field(default_factory=lambda: Listen(host="127.0.0.1", port=9568))
    backend_allow: tuple[str, ...] = ()  # CIDRs; empty: any address the rules let through
    backend_deny: tuple[str, ...] = ()
    # The node's default quotas (-1: unlimited); quota_defaults gathers them.
    quota_proxies: int = UNLIMITED
    quota_backends_per_proxy: int = UNLIMITED
    quota_certificates: int = UNLIMITED
    quota_cache_bytes: int = UNLIMITED
    # Extra ports tenants may claim (issue 13); an address "" is the --http listener's.
    listen_ports: tuple[PortRange, ...] = ()
    openshift_stomp: StompUrl | None = None  # None: no OpenShift routing-event source
    openshift_stomp_password_file: Path | None = None
    openshift_domain: str | None = None
    openshift_endpoint_types: tuple[str, ...] = ("load_balancer",)
    openshift_client_id: str | None = None
    # Toolforge (issue 9; portway.sources.wiring reads these).
    toolforge_listen: Listen | None = None  # None: no 8282 registration listener
    toolforge_identd_port: int = 113
    toolforge_user_prefix: str = "tools"
    toolforge_canonical_domain: str | None = None  # None: no tool routing
    toolforge_legacy_domain: str | None = None
    toolforge_default_backend: str | None = None  # None: what no tool answers gets 404
    toolforge_list: Listen | None = None
    kubernetes_api: str | None = None  # None: no Kubernetes Service watcher
    kubernetes_token_file: Path | None = None
    kubernetes_ca_file: Path | None = None
    kubernetes_label_selector: str = "tools.wmflabs.org/webservice=true"
    # DNS records (RFC 2136; portway.dns.config reads these as one DnsConfig).
    dns_server: Listen | None = None  # None: no DNS management
    dns_zones: tuple[str, ...] = ()
    dns_tsig_name: str = ""
    dns_tsig_algorithm: str = dns_defaults.ALGORITHM
    dns_tsig_secret_file: Path | None = None
    dns_addresses: tuple[str, ...] = ()
    dns_ttl: int = dns_defaults.TTL
    dns_owner: str = dns_defaults.OWNER
    dns_timeout: float = dns_defaults.TIMEOUT
    dns_check_interval: float = dns_defaults.CHECK_INTERVAL
    # Keystone tokens (portway.auth.keystone reads these as one KeystoneConfig).
    keystone_url: str | None = None  # None: Portway's own tokens only
    keystone_user: str = ""
    keystone_password_file: Path | None = None
    keystone_project: str = keystone_defaults.PROJECT
    keystone_user_domain: str = keystone_defaults.DOMAIN
    keystone_project_domain: str = keystone_defaults.DOMAIN
    keystone_cafile: Path | None = None
    keystone_cache_ttl: float = keystone_defaults.CACHE_TTL
    keystone_cache_size: int = keystone_defaults.CACHE_SIZE
    keystone_timeout: float = keystone_defaults.TIMEOUT

    @property
    def quota_defaults(self) -> Quota:
        """The quotas of a project that has none of its own (--quota-*)."""
        return Quota(**{name: getattr(self, f"quota_{name}") for name in QUOTA_NAMES})

    @property
    def backend_policy(self) -> BackendPolicy:
        """The backend rules, with every listener of this node refused as a backend: its
        own and every port of ``--listen-ports`` (a proxy may open it at any time)."""
        return BackendPolicy.build(
            allow=self.backend_allow,
            deny=self.backend_deny,
            listeners=[(x.host, x.port) for x in self.own_listeners],
            port_ranges=[(r.address, r.low, r.high) for r in self.listen_policy.ranges],
        )

    @property
    def own_listeners(self) -> list[Listen]:
        """Every listener this node opens for itself: tenants may claim none of them."""
        mine = [self.api, self.http, self.https, self.metrics]
        mine += [self.toolforge_listen, self.toolforge_list]
        return [x for x in mine if x is not None]

    @property
    def listen_policy(self) -> ListenPolicy:
        """The ports tenants may claim (``--listen-ports``), never one of this node's own."""
        ranges = tuple(
            PortRange(r.address or self.http.host, r.low, r.high) for r in self.listen_ports
        )
        return ListenPolicy(ranges, frozenset(x.port for x in self.own_listeners))

    # Keys that seal tenants' private keys in the store; None: <data_dir>/secret.key,
    # made on first start (SQLite only: PostgreSQL nodes must share one file).
    secret_key_file: Path | None = None

    @property
    def database_url(self) -> str:
        return self.store_url or sqlite_url(self.data_dir)

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or default_secret_key_file(self.data_dir)


def sqlite_url(data_dir: Path) -> str:
    """The store when no --store is given: SQLite in the data dir."""
    return f"sqlite:///{(data_dir / 'portway.db').resolve()}"


def default_secret_key_file(data_dir: Path) -> Path:
    return data_dir / "secret.key"


def parse_listen(value: str, *, flag: str) -> Listen:
    """``host:port``, ``[v6]:port`` or ``:port`` (all addresses) → Listen."""
    text = value.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{flag}: expected HOST:PORT, got {value!r}", field=flag)
    host = host or "0.0.0.0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"{flag}: {host!r} is not an IP address", field=flag) from None
    return Listen(host=host, port=int(port))


def parse_optional_listen(value: str, *, flag: str) -> Listen | None:
    """Like parse_listen; an empty value turns the listener off."""
    return parse_listen(value, flag=flag) if value.strip() else None


DATA_PLANES = ("builtin", "nginx", "haproxy")


def parse_plane_kind(value: str, *, flag: str) -> str:
    kind = value.strip().lower()
    if kind not in DATA_PLANES:
        raise ConfigError(
            f"{flag}: expected one of {', '.join(DATA_PLANES)}, got {value!r}", field=flag
        )
    return kind


def parse_switch(value: str, *, flag: str) -> bool:
    """``on``/``off`` (also yes/no, true/false, 1/0)."""
    word = value.strip().lower()
    if word in ("on", "yes", "true", "1"):
        return True
    if word in ("off", "no", "false", "0", ""):
        return False
    raise ConfigError(f"{flag}: expected on or off, got {value!r}", field=flag)


_NODE_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")


def parse_node_name(value: str, *, flag: str) -> str:
    """A node's name in ``portway node list``: 1-64 letters, digits, '.', '_', '-'."""
    if value and not _NODE_NAME.fullmatch(value):
        raise ConfigError(
            f"{flag}: a node name is 1-64 letters, digits, '.', '_' or '-', got {value!r}",
            field=flag,
        )
    return value


def name_of_node(config: ServeConfig) -> str:
    """``--node-name``, else the host name (cut to the store's 64 characters)."""
    return config.node_name or socket.gethostname()[:64]


def parse_healthz_path(value: str, *, flag: str) -> str:
    """A path the data plane answers itself (``/.well-known/healthz``), or "" for none."""
    from portway.protocol.grammar import is_origin_form

    value = value.strip()
    if value and (not is_origin_form(value) or "?" in value):
        raise ConfigError(f"{flag}: {value!r} is not an absolute path (RFC 3986)", field=flag)
    return value


def parse_zone(value: str, *, flag: str) -> str:
    from portway.model import normalize_hostname

    try:
        return normalize_hostname(value, field=flag, wildcard_ok=False)
    except PortwayError as exc:
        raise ConfigError(f"{flag}: {exc.message}", field=flag) from None


def parse_cidrs(values: tuple[str, ...], *, flag: str) -> tuple[str, ...]:
    out = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ConfigError(f"{flag}: {item!r} is not a CIDR", field=flag) from None
    return tuple(out)


def parse_listen_ports(values: tuple[str, ...], *, flag: str) -> tuple[PortRange, ...]:
    """``8000-8999,8772,0.0.0.0:8773`` → ranges; those without an address get "" (the
    address of the --http listener, which ServeConfig.listen_policy fills in)."""
    return parse_ranges(values, default_address="", flag=flag)


def default_workers() -> int:
    return os.cpu_count() or 1


STOMP_PORT = 61613
_DESTINATION = re.compile(r"/(queue|topic)/[A-Za-z0-9._-]{1,200}\Z")
_ENDPOINT_TYPE = re.compile(r"[a-z0-9_]{1,64}\Z")


def parse_stomp_url(value: str, *, flag: str) -> StompUrl | None:
    """``stomp://user:pass@host:port/queue/name`` → StompUrl; an empty value → None."""
    text = value.strip()
    if not text:
        return None
    bad = f"{flag}: expected stomp://[USER[:PASSWORD]@]HOST[:PORT]/queue/NAME or /topic/NAME"
    try:
        url = urlsplit(text)
        port = url.port or STOMP_PORT
    except ValueError:
        raise ConfigError(f"{bad}, got a bad port", field=flag) from None
    if url.scheme != "stomp" or not url.hostname or url.query or url.fragment:
        raise ConfigError(bad, field=flag)
    if not _DESTINATION.match(url.path):
        raise ConfigError(f"{bad}; the destination {url.path!r} is neither", field=flag)
    return StompUrl(
        host=_stomp_host(url.hostname, flag=flag),
        port=port,
        destination=url.path,
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password is not None else None,
    )


def _stomp_host(host: str, *, flag: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host == "localhost":
        return host
    from portway.model import normalize_hostname

    try:
        return normalize_hostname(host, field=flag, wildcard_ok=False)
    except PortwayError as exc:
        raise ConfigError(f"{flag}: {exc.message}", field=flag) from None


def parse_optional_zone(value: str, *, flag: str) -> str | None:
    """Like parse_zone; an empty value means unset."""
    return parse_zone(value, flag=flag) if value.strip() else None


def parse_user_prefix(value: str, *, flag: str) -> str:
    """The part of a tool account's Unix user before ``.<tool>`` (``tools``)."""
    value = value.strip()
    if not value or any(c in value for c in ". :\t"):
        raise ConfigError(f"{flag}: expected a user-name prefix such as 'tools'", field=flag)
    return value


def parse_backend_url(value: str, *, flag: str) -> str | None:
    """``http://HOST:PORT`` (a bare ``IP:PORT`` means http), or "" for none."""
    from portway.errors import PortwayError
    from portway.protocol.registration import parse_destination

    value = value.strip()
    if not value:
        return None
    try:
        destination = parse_destination(value.rstrip("/"))
    except PortwayError as exc:
        raise ConfigError(f"{flag}: {exc.message}", field=flag) from None
    if destination.scheme != "http":
        raise ConfigError(f"{flag}: only http:// backends are supported", field=flag)
    return value


def parse_api_url(value: str, *, flag: str) -> str | None:
    """An ``https://`` (or ``http://``) API server URL, or "" for none."""
    value = value.strip().rstrip("/")
    if not value:
        return None
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        raise ConfigError(f"{flag}: expected https://HOST[:PORT], got {value!r}", field=flag)
    return value


def parse_endpoint_types(values: tuple[str, ...], *, flag: str) -> tuple[str, ...]:
    """Names such as ``load_balancer``, repeatable or comma-separated."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            name = item.strip().lower()
            if not name:
                continue
            if not _ENDPOINT_TYPE.match(name):
                raise ConfigError(f"{flag}: {item!r} is not an endpoint type", field=flag)
            if name not in out:
                out.append(name)
    if not out:
        raise ConfigError(f"{flag}: at least one endpoint type is needed", field=flag)
    return tuple(out)


_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")


def parse_client_id(value: str, *, flag: str) -> str | None:
    """A STOMP client-id (and durable subscription name); empty: derived from the host."""
    text = value.strip()
    if text and not _CLIENT_ID.match(text):
        raise ConfigError(f"{flag}: use 1-100 of [A-Za-z0-9._-], got {value!r}", field=flag)
    return text or None
