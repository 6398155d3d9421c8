"""Snapshot → nginx configuration tree, as text (pure: no I/O, no clock).

The layout follows the original spec (seeds/000): one file per proxy in
``sites-available/<name>``, linked into ``sites-enabled/<name>`` while the proxy has
backends. nginx keeps one ``server`` block per hostname, and several proxies may share
a hostname by path prefix, so a proxy's file holds what is its own at the ``http``
level, its ``upstream`` (backends, weights, algorithm); the ``server`` block of each
hostname, with one ``location`` per proxy, lives in ``servers/<name>``. Both come from
the same snapshot, so a location never names an upstream that is not enabled: a proxy
without backends answers Portway's 503 page from its location instead.

Routing matches the built-in data plane (router/table.py): exact host, then the
one-level wildcard (a regex ``server_name``: nginx's own ``*.parent`` would also match
``a.b.parent``), then the longest prefix on segment boundaries (``location = /p`` and
``location ^~ /p/``). A same-project wildcard route is copied into an exact host's
server only where no exact route covers it, which is the table's fallback rule.

Every tenant string is checked again here (``service.validation``) and quoted
(``nginx_syntax``); a proxy that breaks a rule, or uses what nginx cannot express, is
left out and reported, and the rest of the tree is rendered. What nginx OSS lacks
(active health checks, cookie stickiness) is served without and reported too, never
imitated.

TLS backends (``Backend.tls``) are ``proxy_pass https://`` to the proxy's upstream, with
the built-in plane's rule (tls/upstream.py): TLS 1.2+, not verified, SNI only for a
hostname. nginx has one scheme and one SNI name per ``proxy_pass``, so a proxy that
mixes TLS and plain backends is refused (splitting it into two upstreams would change
its balancing), and one whose TLS backends have several hostnames is served without SNI.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from portway.drivers import nginx_cache, nginx_limits, nginx_stream
from portway.drivers import nginx_http as http
from portway.drivers.addresses import listen_addresses
from portway.drivers.file_tree import FileTree
from portway.drivers.nginx_options import STREAM_MODULE, NginxOptions
from portway.drivers.nginx_syntax import comment, file_name, quote, upstream_name, var_suffix
from portway.drivers.port_rules import port_problem
from portway.drivers.problems import Problem
from portway.errors import ConfigError, PortwayError
from portway.model import Backend, Certificate, Proxy, StreamSettings
from portway.model.proxy import STREAM_PROTOCOLS
from portway.router import Snapshot
from portway.service import validation

MAIN = "nginx.conf"
AVAILABLE, ENABLED, SERVERS, CERTS = "sites-available", "sites-enabled", "servers", "certs"
_HASHED = ("source_ip", "consistent_hash")
Down = frozenset[tuple[str, str]]  # (proxy id, backend id) the active checks declare down


@dataclass(slots=True)
class _Plan:
    """The proxies that can be rendered, with what is said about each."""

    proxies: list[Proxy] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def render(snapshot: Snapshot, options: NginxOptions, down: Down = frozenset()) -> FileTree:
    """The whole tree for ``snapshot``, with the members in ``down`` (the active checks'
    verdicts) marked ``down``. Raises ConfigError only for bad ``options``."""
    if options.https and options.default_certificate is None:
        raise ConfigError("nginx HTTPS listeners need a default certificate")
    proxies = (_with_verdicts(route.proxy, down) for route in snapshot.routes.routes())
    claimed = snapshot.routes.listeners()
    plan = _screen(proxies, options, claimed)
    files: dict[str, str] = {}
    links: dict[str, str] = {}
    relayed = [p for p in plan.proxies if p.protocol in STREAM_PROTOCOLS]
    plan.proxies = [p for p in plan.proxies if p.protocol not in STREAM_PROTOCOLS]
    for proxy in plan.proxies:
        # Every proxy has its file; only one with a backend is linked, so nginx never
        # reads an upstream without servers (which it refuses).
        name = proxy_file(proxy)
        files[f"{AVAILABLE}/{name}"] = _upstream(proxy, options)
        if _live(proxy):
            links[f"{ENABLED}/{name}"] = f"../{AVAILABLE}/{name}"
    certs = _certificates(snapshot.certificates)
    secrets: set[str] = set()
    by_port: dict[int | None, list[Proxy]] = {}
    for proxy in plan.proxies:
        by_port.setdefault(proxy.listen_port, []).append(proxy)
    defaults = []
    for port, on_port in sorted(by_port.items(), key=lambda item: item[0] or 0):
        listens = _listens(port, claimed, options)
        if port is not None:
            defaults.append(http.default_server(*listens))
        for host, group in _hosts(on_port).items():
            cert = None
            if listens[1]:
                cert = host_certificate(group, snapshot.certificates, plan.problems)
            if cert is not None:
                files.update(certs[cert.id])
                secrets.add(_cert_paths(cert)[1])
            extra = _fallbacks(host, group, on_port)
            text = _server(host, group, extra, cert, options, listens)
            where = host if port is None else f"{host}:{port}"
            files[f"{SERVERS}/{file_name('host', where, where)}"] = text
    servers = sum(len(p.backends) for p in plan.proxies)
    stream = _stream(relayed, claimed, options)
    files[MAIN] = http.main(
        options,
        server_names=len(files) + 1,
        upstream_servers=servers,
        extra_servers="".join(defaults),
        stream=stream,
        caches=nginx_cache.paths(plan.proxies, options),
        purges=nginx_cache.control_locations(plan.proxies, options),
    )
    files.update(http.includes(options))
    return FileTree(files, links, frozenset(secrets), tuple(plan.problems))


def _listens(port: int | None, claimed: Mapping[int, str], options: NginxOptions) -> http.Listens:
    """The plain and TLS addresses of the shared listeners (``port`` None) or of a
    port of its own."""
    if port is None:
        return options.http, options.https
    where = nginx_stream.binds(port, options)
    return (where, ()) if claimed[port] == "http" else ((), where)


def _stream(relayed: list[Proxy], claimed: Mapping[int, str], options: NginxOptions) -> str:
    ports: dict[int, list[Proxy]] = {}
    for proxy in relayed:
        if proxy.listen_port is not None:
            ports.setdefault(proxy.listen_port, []).append(proxy)
    members = {p.id: _members(p, options, " " * 8) for p in relayed}
    for pid, text in members.items():
        if "server " not in text:  # nginx refuses an upstream without servers
            members[pid] = text + f"        server {nginx_stream.NOWHERE} down;\n"
    names = {p.hostname: _server_name(p.hostname) for p in relayed}
    return nginx_stream.block(ports, claimed, options, members, names)


def proxy_file(proxy: Proxy) -> str:
    return file_name("proxy", f"{proxy.hostname}{proxy.path_prefix}", proxy.id)


def _live(proxy: Proxy) -> bool:
    return any(b.weight > 0 for b in proxy.backends)


def _with_verdicts(proxy: Proxy, down: Down) -> Proxy:
    """The proxy with the members the active checks declare down at weight 0: nginx
    renders both as ``down`` (no request reaches them), and a proxy left with none
    answers the 503 page, as the built-in plane does."""
    if not any((proxy.id, b.id) in down for b in proxy.backends):
        return proxy
    members = tuple(replace(b, weight=0) if (proxy.id, b.id) in down else b for b in proxy.backends)
    return replace(proxy, backends=members)


def _screen(proxies: Iterable[Proxy], options: NginxOptions, claimed: Mapping[int, str]) -> _Plan:
    plan = _Plan()
    for proxy in sorted(proxies, key=lambda p: p.id):
        refused = list(_refusals(proxy))
        refused += _port_refusals(proxy, options, claimed)
        # Client limits (drivers/nginx_limits.py) depend on the node's trusted proxies.
        for name, message in nginx_limits.refusals(proxy, options.trusted_proxies):
            refused.append(Problem(proxy.id, name, message, False))
        for name, message in nginx_cache.refusals(proxy, options):
            refused.append(Problem(proxy.id, name, message, False))
        if options.upstream_ca_file is not None:
            refused += _unverifiable(proxy)
        if refused:
            plan.problems.extend(refused)
            continue
        plan.proxies.append(proxy)
        plan.problems.extend(_degradations(proxy))
        for name, message in nginx_limits.degradations(proxy):
            plan.problems.append(Problem(proxy.id, name, message, True))
        for name, message in (
            *nginx_cache.degradations(proxy),
            *nginx_cache.purge_degradations(proxy),
        ):
            plan.problems.append(Problem(proxy.id, name, message, True))
    return plan


def _refusals(proxy: Proxy) -> Iterable[Problem]:
    for found in validation.problems(proxy):
        yield Problem(proxy.id, found.field, found.message, False)
    for i, backend in enumerate(proxy.backends):
        where = f"backends[{i}]"
        try:
            validation.address(backend.address, f"{where}.address")
            validation.port(backend.port, f"{where}.port")
            validation.weight(backend.weight, f"{where}.weight")
        except PortwayError as err:
            yield Problem(proxy.id, err.field or where, err.message, False)
    if proxy.algorithm == "consistent_hash" and proxy.hash_key is not None:
        try:
            _hash_variable(proxy.hash_key)
        except ConfigError as err:
            yield Problem(proxy.id, "hash_key", err.message, False)
    if len({b.tls for b in proxy.backends}) > 1:
        message = "nginx has one scheme per proxy_pass: TLS and plain backends cannot be mixed"
        yield Problem(proxy.id, "backends.tls", message, False)
    if proxy.rewrite.backend_prefix is not None:
        # nginx's proxy_pass with a URI re-encodes the decoded path, so it cannot send the
        # client's bytes with only the prefix replaced; forwarding the path unchanged would
        # send requests to a path the tenant did not configure.
        message = "nginx cannot replace the path prefix byte for byte: rewrite is refused"
        yield Problem(proxy.id, "rewrite.backend_prefix", message, False)


def _port_refusals(
    proxy: Proxy, options: NginxOptions, claimed: Mapping[int, str]
) -> Iterable[Problem]:
    """port_rules' refusal, then what nginx cannot serve as asked."""
    port = proxy.listen_port
    if port is None:
        return
    certificate = options.default_certificate is not None
    binds = bool(nginx_stream.binds(port, options))
    found = port_problem(proxy, binds=binds, claimed=claimed, has_certificate=certificate)
    if found is not None:
        yield found
    elif proxy.protocol in STREAM_PROTOCOLS and options.stream_module is None:
        message = (
            f"nginx's stream module is not installed ({STREAM_MODULE}, Debian's"
            " libnginx-mod-stream): tcp and tls-passthrough ports are refused"
        )
        yield Problem(proxy.id, "protocol", message, False)
    elif proxy.stream.proxy_protocol:
        # nginx 1.22's stream proxy_protocol sends version 1 (text); a backend that
        # expects Portway's version 2 would read it as garbage.
        message = "nginx sends only PROXY protocol version 1: stream.proxy_protocol is refused"
        yield Problem(proxy.id, "stream.proxy_protocol", message, False)
    elif proxy.protocol == "tls-passthrough" and proxy.stream != StreamSettings():
        # One nginx server per port: its proxy_protocol and limit_conn cannot differ
        # by server name.
        message = "nginx cannot set stream settings per server name on a passthrough port"
        yield Problem(proxy.id, "stream", message, False)


def _unverifiable(proxy: Proxy) -> list[Problem]:
    """With ``--upstream-ca-file`` a TLS backend must be checked against its address as
    configured (tls/upstream.py). nginx checks one DNS name per proxy (``proxy_ssl_name``,
    X509_check_host: never an IP address), so a proxy it cannot check that way is left
    out rather than served unverified."""
    tls = [b for b in proxy.backends if b.tls]
    if not tls:
        return []
    names = _tls_names(proxy)
    if len(names) == 1 and all(_named(b) for b in tls):
        return []
    message = (
        "nginx verifies a TLS backend by one DNS name per proxy: backends addressed by IP,"
        " or by several names, cannot be verified with --upstream-ca-file"
    )
    return [Problem(proxy.id, "backends.tls", message, False)]


def _named(backend: Backend) -> bool:
    try:
        ipaddress.ip_address(backend.address)
    except ValueError:
        return True
    return False


def _degradations(proxy: Proxy) -> Iterable[Problem]:
    persistence = proxy.session_persistence
    if persistence is not None and persistence.type != "source_ip":
        message = "nginx OSS has no cookie stickiness: served without session persistence"
        yield Problem(proxy.id, "session_persistence", message, True)
    if proxy.health_check is not None:
        message = "nginx OSS has no active health checks: only passive ones (max_fails) run"
        yield Problem(proxy.id, "health_check", message, True)
    if _hashed(proxy) and any(b.backup for b in proxy.backends):
        message = "nginx cannot combine backups with hash balancing: backups left out"
        yield Problem(proxy.id, "backends.backup", message, True)
    if proxy.timeouts.total is not None:
        message = "nginx has no whole-exchange timeout: timeouts.total is not enforced"
        yield Problem(proxy.id, "timeouts.total", message, True)
    if proxy.limits.max_body_bytes == 0:
        message = "nginx cannot refuse every body (its 0 means no limit): 1 byte is allowed"
        yield Problem(proxy.id, "limits.max_body_bytes", message, True)
    if len(_tls_names(proxy)) > 1:
        message = "nginx sends one SNI name per proxy: TLS backends are reached without SNI"
        yield Problem(proxy.id, "backends.tls", message, True)


def _hashed(proxy: Proxy) -> bool:
    return proxy.algorithm in _HASHED or (
        proxy.session_persistence is not None and proxy.session_persistence.type == "source_ip"
    )


def _hash_variable(hash_key: str | None) -> str:
    if hash_key is None:
        return "$remote_addr"
    kind, _, name = hash_key.partition(":")
    if kind == "header":  # nginx exposes a header lower-cased, with '-' as '_'
        return "$http_" + var_suffix(name.lower().replace("-", "_"))
    return "$cookie_" + var_suffix(name)


def _upstream(proxy: Proxy, options: NginxOptions) -> str:
    lines = [comment(f"proxy {proxy.id} of project {proxy.project}")]
    lines.append(f"upstream {upstream_name(proxy.id)} {{\n    zone {http.ZONE};\n")
    lines.append(_members(proxy, options, "    "))
    lines.append(f"    keepalive {options.upstream_keepalive};\n}}\n")
    lines.append(nginx_limits.zone_lines(proxy))  # http level, beside the upstream
    if nginx_cache.cached(proxy, options):
        lines.append(nginx_cache.maps(proxy))
    return "".join(lines)


def _members(proxy: Proxy, options: NginxOptions, pad: str) -> str:
    """An upstream's balancing method and ``server`` lines, in http{} and stream{}."""
    lines = []
    method = _method(proxy)
    if method:
        lines.append(f"{pad}{method};\n")
    hashed = _hashed(proxy)
    for backend in proxy.backends:
        if backend.backup and hashed:
            continue
        params = _params(proxy, backend, options)
        lines.append(f"{pad}server {quote(_authority(backend))}{params};\n")
    return "".join(lines)


def _method(proxy: Proxy) -> str:
    if _hashed(proxy):
        key = proxy.hash_key if proxy.algorithm == "consistent_hash" else None
        return f"hash {_hash_variable(key)} consistent"
    return {"least_conn": "least_conn", "random": "random two least_conn"}.get(proxy.algorithm, "")


def _authority(backend: Backend) -> str:
    address = validation.address(backend.address)
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{backend.port}"


def _params(proxy: Proxy, backend: Backend, options: NginxOptions) -> str:
    if backend.weight == 0:
        return " down"
    # Plain round robin takes each backend in turn whatever its weight (docs/dataplane.md).
    weight = 1 if proxy.algorithm == "round_robin" else backend.weight
    text = f" weight={weight}" if weight != 1 else ""
    backoff = max(1, round(options.passive_backoff))  # nginx takes whole seconds here
    text += f" max_fails={options.passive_failures} fail_timeout={backoff}s"
    return text + (" backup" if backend.backup else "")


def _secs(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _hosts(proxies: list[Proxy]) -> dict[str, list[Proxy]]:
    hosts: dict[str, list[Proxy]] = {}
    for proxy in proxies:
        hosts.setdefault(proxy.hostname, []).append(proxy)
    return dict(sorted(hosts.items()))


def _fallbacks(host: str, group: list[Proxy], proxies: list[Proxy]) -> list[Proxy]:
    """The same-project wildcard routes an exact host falls back to (router/table.py):
    those whose prefix no route of the host covers, so nginx's longest match agrees."""
    owners = {p.project for p in group}
    dot = host.find(".")
    if host.startswith("*.") or len(owners) != 1 or dot < 0:
        return []
    wildcard, owner = "*." + host[dot + 1 :], owners.pop()
    return [
        p
        for p in proxies
        if p.hostname == wildcard
        and p.project == owner
        and not any(_covers(own.path_prefix, p.path_prefix) for own in group)
    ]


def _covers(prefix: str, path: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def _certificates(certs: Mapping[str, Certificate]) -> dict[str, dict[str, str]]:
    out = {}
    for cert in certs.values():
        chain, key = _cert_paths(cert)
        out[cert.id] = {chain: cert.chain_pem, key: cert.key_pem}
    return out


def _cert_paths(cert: Certificate) -> tuple[str, str]:
    name = file_name("cert", cert.name, f"{cert.id}\0{cert.fingerprint}")
    return f"{CERTS}/{name}.pem", f"{CERTS}/{name}.key"


def host_certificate(
    group: list[Proxy], certs: Mapping[str, Certificate], problems: list[Problem]
) -> Certificate | None:
    """The host's own certificate when its one project attached one (the default
    certificate otherwise, as in dataplane/tls.py); one rule for every driver."""
    wanted = {p.tls.certificate for p in group} - {None}
    projects = {p.project for p in group}
    if len(wanted) != 1 or len(projects) != 1:
        return None
    cert = certs.get(wanted.pop() or "")
    if cert is None or cert.project not in projects:
        message = "the attached certificate is not in the snapshot: the default is served"
        problems.extend(Problem(p.id, "tls.certificate", message, True) for p in group)
        return None
    return cert


def _server(
    host: str,
    group: list[Proxy],
    fallbacks: list[Proxy],
    cert: Certificate | None,
    options: NginxOptions,
    listens: http.Listens,
) -> str:
    plain, secure = listens
    lines = ["server {\n"]
    lines += [f"    listen {a};\n" for a in listen_addresses(plain, "nginx")]
    lines += [f"    listen {a} ssl;\n" for a in listen_addresses(secure, "nginx")]
    lines.append(f"    server_name {quote(_server_name(host))};\n")
    if cert is not None:
        chain, key = _cert_paths(cert)
        lines.append(
            f"    ssl_certificate {quote(chain)};\n    ssl_certificate_key {quote(key)};\n"
        )
    lines.append(f"    include {http.ERRORS};\n")
    routes = sorted(group + fallbacks, key=lambda p: (-len(p.path_prefix), p.path_prefix))
    for proxy in routes:
        lines.extend(_locations(proxy, options))
    if not any(p.path_prefix == "/" for p in routes):
        lines.append("    location / {\n        return 404;\n    }\n")
    lines.append("}\n")
    return "".join(lines)


def _server_name(host: str) -> str:
    if not host.startswith("*."):
        return host
    # One label exactly, as the route table's wildcard (nginx's "*." takes any depth).
    parent = host[2:].replace(".", "\\.")
    return f"~^(?!-)[a-z0-9-]{{1,63}}(?<!-)\\.{parent}$"


def _locations(proxy: Proxy, options: NginxOptions) -> list[str]:
    body = _location_body(proxy, options)
    prefix = proxy.path_prefix
    extra = []
    if _live(proxy) and nginx_cache.cached(proxy, options):
        extra.append(nginx_cache.purge_location(proxy, "    ", options))
    if prefix == "/":
        return [*extra, f"    location / {{\n{body}    }}\n"]
    return [
        *extra,
        f"    location = {quote(prefix)} {{\n{body}    }}\n",
        f"    location ^~ {quote(prefix + '/')} {{\n{body}    }}\n",
    ]


def _location_body(proxy: Proxy, options: NginxOptions) -> str:
    pad = " " * 8
    lines = [pad + comment(f"proxy {proxy.id}")]
    if proxy.tls.redirect_http and options.https:
        lines.append(f"{pad}if ($scheme = http) {{\n{pad}    {http.redirect(options)};\n{pad}}}\n")
    if proxy.tls.hsts and (options.https or proxy.protocol == "https"):
        lines.append(f"{pad}add_header Strict-Transport-Security $portway_hsts always;\n")
    if not _live(proxy):
        return "".join(lines) + f"{pad}return 503;\n"
    size = proxy.limits.max_body_bytes
    timeouts = proxy.timeouts
    tls = any(b.tls for b in proxy.backends)  # all or none (_refusals)
    lines.append(f"{pad}proxy_pass {'https' if tls else 'http'}://{upstream_name(proxy.id)};\n")
    lines.extend(nginx_limits.location_lines(proxy, pad))
    if nginx_cache.cached(proxy, options):
        lines.extend(nginx_cache.location_lines(proxy, pad))
    if tls:
        lines.extend(_tls_lines(proxy, pad, options.upstream_ca_file))
    lines += [
        f"{pad}client_max_body_size {0 if size is None else max(size, 1)};\n",
        f"{pad}proxy_connect_timeout {_secs(timeouts.connect)};\n",
        f"{pad}proxy_read_timeout {_secs(max(timeouts.first_byte, timeouts.idle))};\n",
        f"{pad}proxy_send_timeout {_secs(timeouts.idle)};\n",
        f"{pad}include {_proxy_include(proxy, options)};\n",
    ]
    return "".join(lines)


def _tls_names(proxy: Proxy) -> set[str]:
    """The hostnames (not IP addresses) of the proxy's TLS backends: their SNI names."""
    names = set()
    for backend in proxy.backends:
        if backend.tls:
            try:
                ipaddress.ip_address(backend.address)
            except ValueError:
                names.add(validation.address(backend.address))
    return names


def _tls_lines(proxy: Proxy, pad: str, ca_file: str | None) -> list[str]:
    """``proxy_ssl_*`` for TLS backends: TLS 1.2+, the backend's hostname as SNI when
    they share one (nginx's default is no SNI, as for an IP address); verified against
    ``ca_file`` and that name when there is one (``_unverifiable`` left out the rest)."""
    lines = [f"{pad}proxy_ssl_protocols TLSv1.2 TLSv1.3;\n"]
    if ca_file is not None:
        lines.append(f"{pad}proxy_ssl_verify on;\n")
        lines.append(f"{pad}proxy_ssl_trusted_certificate {quote(ca_file)};\n")
        lines.append(f"{pad}proxy_ssl_verify_depth 5;\n")
    names = _tls_names(proxy)
    if len(names) == 1:
        name = quote(names.pop())
        lines.append(f"{pad}proxy_ssl_server_name on;\n{pad}proxy_ssl_name {name};\n")
    return lines


def _proxy_include(proxy: Proxy, options: NginxOptions) -> str:
    """The proxying defaults, with or without the client's address (model.Privacy)."""
    private = not proxy.privacy.sends_client_address(options.forwarded_for)
    return http.PROXY_PRIVATE if private else http.PROXY
