"""Snapshot → HAProxy configuration (``haproxy.cfg``, a host map, certificates), as text
(pure: no I/O, no clock).

One ``backend`` per proxy, named from a hash of its id, with a fixed number of server
slots: its members, then disabled spares (``spare_slots``), so a member can be added,
changed or removed through the Runtime API (``set server ... addr/weight/state``) without
a reload. Which member sits in which slot is kept from the previous render (``layout``),
so a slot's name never moves to another member while HAProxy runs.

Routing matches the built-in data plane (router/table.py): the exact host, then the
one-level wildcard, then the longest prefix on segment boundaries. A hostname with one
proxy at ``/`` (most of them) is one line of ``hosts.map``, looked up with
``var(txn.host),map(...)`` and then, for its wildcard, ``var(txn.wild),map(...)``; the
Runtime API's ``add/set/del map`` changes those without a reload. A hostname with path
prefixes is a list of ``use_backend ... if`` rules in the frontend (ACLs cannot be
changed at runtime), with the same-project wildcard fallback copied in as nginx does,
and a last rule that answers 404 so another project's wildcard never speaks for it.

``HaproxyConfig.front`` and ``.sections`` are ``haproxy.cfg`` with what the Runtime API
can change masked (the addresses of IP members, weights, which slots are enabled): two
configurations with the same masked text differ only in what ``haproxy_plan`` can apply
live.

Every tenant string is checked again here (``service.validation``) and quoted
(``haproxy_syntax``); a proxy that breaks a rule is left out and reported, and the rest
is rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from portway.drivers import client_limits, haproxy_cache
from portway.drivers import haproxy_backend as backend
from portway.drivers import haproxy_base as base
from portway.drivers import haproxy_limits as limits
from portway.drivers import haproxy_ports as ports
from portway.drivers.haproxy_backend import Slot
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.haproxy_syntax import backend_name, quote, word
from portway.drivers.nginx_config import host_certificate
from portway.drivers.nginx_syntax import file_name
from portway.drivers.port_rules import port_problem
from portway.drivers.problems import Problem
from portway.errors import ConfigError, PortwayError
from portway.model import Backend, Certificate, Proxy
from portway.model.proxy import STREAM_PROTOCOLS
from portway.router import Snapshot
from portway.service import validation

__all__ = ["HaproxyConfig", "Problem", "Slot", "render"]

Layout = Mapping[str, tuple[str | None, ...]]  # backend name → member id per slot
Down = frozenset[tuple[str, str]]  # (proxy id, backend id) the active checks declare down


@dataclass(frozen=True, slots=True)
class HaproxyConfig:
    """Files (path relative to the conf dir → text), which are private keys (0600), and
    the parts the Runtime API can change: each backend's slots and the host map."""

    files: Mapping[str, str]
    front: str  # everything before the proxies' backends, masked
    sections: Mapping[str, str]  # backend name → its section, masked
    slots: Mapping[str, tuple[Slot, ...]]
    hosts: Mapping[str, str]
    secrets: frozenset[str] = frozenset()
    problems: tuple[Problem, ...] = ()

    @property
    def static(self) -> str:
        return self.front + "".join(self.sections.values())

    def layout(self) -> dict[str, tuple[str | None, ...]]:
        return {name: tuple(s.member for s in slots) for name, slots in self.slots.items()}


@dataclass(slots=True)
class _Parts:
    backends: dict[str, tuple[str, str]] = field(default_factory=dict)  # full, static
    slots: dict[str, tuple[Slot, ...]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    proxies: list[Proxy] = field(default_factory=list)
    cache_mib: int = 0  # of --haproxy-cache-memory, taken by the proxies added so far


def render(
    snapshot: Snapshot,
    options: HaproxyOptions,
    layout: Layout | None = None,
    down: Down = frozenset(),
) -> HaproxyConfig:
    """The whole configuration for ``snapshot``; ``layout`` is the previous render's, so
    members keep their slots; the members in ``down`` (the active checks' verdicts) are
    in maintenance. Raises ConfigError only for bad ``options``."""
    if options.https and not options.default_certificate:
        raise ConfigError("HAProxy HTTPS listeners need a default certificate")
    refused = client_limits.node_problem(
        "HAProxy",
        rate_limit=options.rate_limit,
        deny_clients=options.deny_clients,
        trusted_proxies=options.trusted_proxies,
    )
    if refused is not None:
        raise ConfigError(refused)
    limits.acl(options.deny_clients)  # the operator's ranges: ConfigError if one is not
    parts = _Parts()
    claimed = snapshot.routes.listeners()
    for proxy in sorted((r.proxy for r in snapshot.routes.routes()), key=lambda p: p.id):
        _add_proxy(parts, proxy, options, layout or {}, down, claimed)
    shared = [p for p in parts.proxies if p.listen_port is None]
    hosts, rules = _routing(shared, options, base.HOSTS)
    files: dict[str, str] = {base.HOSTS: _map(hosts)}
    ports = _ports(parts.proxies, claimed, options, files)
    files.update(base.error_files())
    files.update(limits.files(parts.proxies, options))
    secrets: set[str] = set()
    tls_ports = "https" in {claimed[p] for p in {p.listen_port for p in parts.proxies} if p}
    if options.https or tls_ports:
        crt_list, certs = _certificates(parts, snapshot.certificates, options)
        files[base.CRT_LIST] = crt_list
        files.update(certs)
        secrets.update(certs)
        if options.ticket_keys:
            files[base.TICKET_KEYS] = options.ticket_keys
            secrets.add(base.TICKET_KEYS)
    front = _front(rules, options, tls_ports) + ports
    files[base.CONFIG] = front + "".join(text for text, _ in parts.backends.values())
    return HaproxyConfig(
        files=files,
        front=front,
        sections={name: masked for name, (_, masked) in parts.backends.items()},
        slots=dict(parts.slots),
        hosts=hosts,
        secrets=frozenset(secrets),
        problems=tuple(parts.problems),
    )


def _add_proxy(
    parts: _Parts,
    proxy: Proxy,
    options: HaproxyOptions,
    layout: Layout,
    down: Down,
    claimed: Mapping[int, str],
) -> None:
    refused = list(_refusals(proxy, options))
    refused += _port_refusals(proxy, options, claimed)
    if not refused:
        proxy, full = haproxy_cache.over_budget(proxy, parts.cache_mib, options.cache_memory)
        name = backend_name(proxy.id)
        members = tuple(backend.effective(proxy, m) for m in proxy.backends)
        held = frozenset(b for p, b in down if p == proxy.id)
        slots = _slots(members, layout.get(name, ()), options.spare_slots, held)
        try:
            parts.backends[name] = backend.section(proxy, slots, options)
        except ConfigError as err:  # the second wall: a string quote() cannot carry
            refused.append(Problem(proxy.id, err.field or "proxy", err.message, False))
        else:
            parts.slots[name] = slots
            parts.proxies.append(proxy)
            parts.cache_mib += haproxy_cache.memory_mib(proxy)
            if full is not None:
                parts.problems.append(Problem(proxy.id, "cache.max_bytes", full, True))
            parts.problems.extend(_degradations(proxy, options))
    parts.problems.extend(refused)


def _refusals(proxy: Proxy, options: HaproxyOptions) -> Iterable[Problem]:
    for found in validation.problems(proxy):
        yield Problem(proxy.id, found.field, found.message, False)
    for i, member in enumerate(proxy.backends):
        where = f"backends[{i}]"
        try:
            validation.address(member.address, f"{where}.address")
            validation.port(member.port, f"{where}.port")
            validation.weight(member.weight, f"{where}.weight")
        except PortwayError as err:
            yield Problem(proxy.id, err.field or where, err.message, False)
    checks = (
        ("hostname", lambda: word(proxy.hostname)),
        ("path_prefix", lambda: quote(proxy.path_prefix)),
        ("hash_key", lambda: backend.hash_fetch(proxy)),
        ("session_persistence.cookie_name", lambda: backend.persistence(proxy)),
        ("limits.deny", lambda: limits.acl(proxy.limits.deny)),
    )
    for name, check in checks:
        try:
            check()
        except ConfigError as err:
            yield Problem(proxy.id, name, err.message, False)
    if proxy.rewrite.backend_prefix is not None:
        # Forwarding the client's path instead would reach a resource the tenant did not
        # configure; the built-in plane is the one that rewrites (docs/dataplanes.md).
        message = "the HAProxy data plane does not rewrite paths: rewrite is refused"
        yield Problem(proxy.id, "rewrite.backend_prefix", message, False)
    for name, message in client_limits.refusals(proxy, "HAProxy", options.trusted_proxies):
        yield Problem(proxy.id, name, message, False)


def _port_refusals(
    proxy: Proxy, options: HaproxyOptions, claimed: Mapping[int, str]
) -> Iterable[Problem]:
    port = proxy.listen_port
    binds = port is not None and ports.allowed(port, options)
    certificate = bool(options.default_certificate)
    found = port_problem(proxy, binds=binds, claimed=claimed, has_certificate=certificate)
    if found is not None:
        yield found


def _degradations(proxy: Proxy, options: HaproxyOptions) -> Iterable[Problem]:
    for name, message in limits.degradations(proxy, options):
        yield Problem(proxy.id, name, message, True)
    for name, message in haproxy_cache.degradations(proxy):
        yield Problem(proxy.id, name, message, True)
    if proxy.timeouts.total is not None:
        message = "HAProxy has no whole-exchange timeout: timeouts.total is not enforced"
        yield Problem(proxy.id, "timeouts.total", message, True)
    if proxy.toolforge is not None:
        message = "HAProxy is not given Toolforge path patterns: routed by prefix only"
        yield Problem(proxy.id, "toolforge", message, True)
    tls_ips = [b for b in proxy.backends if b.tls and Slot(b.id, b.id, b.address).by_ip]
    if options.upstream_ca_file is not None and tls_ips:
        message = (
            "HAProxy checks a TLS backend addressed by IP against --upstream-ca-file's CAs"
            " but not against its address"
        )
        yield Problem(proxy.id, "backends.tls", message, True)


# -- slots -------------------------------------------------------------------------------


def _slots(
    members: tuple[Backend, ...],
    previous: tuple[str | None, ...],
    spares: int,
    down: frozenset[str] = frozenset(),
) -> tuple[Slot, ...]:
    """Members keep the slot they had; new ones take free slots, then new slots. The
    count never shrinks while the layout is kept (a shrink would need a reload).

    A new member takes a slot that was already spare before one its old member just
    left: a replaced member is then made (a spare slot comes up) before it is broken
    (its own slot goes to maintenance), so a backend whose only member is replaced is
    never left with none."""
    by_id = {m.id: m for m in members}
    ids: list[str | None] = [i if i in by_id else None for i in previous]
    spare = [n for n, i in enumerate(previous) if i is None]
    freed = [n for n, i in enumerate(previous) if i is not None and i not in by_id]
    free = spare + freed
    for member in members:
        if member.id in ids:
            continue
        if free:
            ids[free.pop(0)] = member.id
        else:
            ids.append(member.id)
    if len(ids) > len(previous) or not previous:  # new slots mean a reload: add spares
        ids += [None] * (len(members) + spares - len(ids))
    return tuple(_slot(f"s{n}", by_id.get(i or ""), down) for n, i in enumerate(ids, 1))


def _slot(name: str, member: Backend | None, down: frozenset[str]) -> Slot:
    if member is None:
        return Slot(name, None)
    address = validation.address(member.address)
    return Slot(
        name,
        member.id,
        address,
        member.port,
        member.weight,
        member.backup,
        member.tls,
        down=member.id in down,
    )


# -- routing -----------------------------------------------------------------------------


def _ports(
    proxies: list[Proxy], claimed: Mapping[int, str], options: HaproxyOptions, files: dict[str, str]
) -> str:
    """The frontends of the ports of their own, in port order; their host maps go into
    ``files``."""
    by_port: dict[int, list[Proxy]] = {}
    for proxy in proxies:
        if proxy.listen_port is not None:
            by_port.setdefault(proxy.listen_port, []).append(proxy)
    out = []
    for port, group in sorted(by_port.items()):
        protocol = claimed[port]
        map_name = ports.hosts_file(port)
        hosts, rules = _routing(group, options, map_name)
        if protocol != "tcp":
            files[map_name] = _map(hosts)
        if protocol in STREAM_PROTOCOLS:
            out.append(ports.stream(port, protocol, group, rules, options))
            continue
        binds = ports.binds(port, options)
        name = ports.name(port)
        plain, secure = (binds, ()) if protocol == "http" else ((), binds)
        out.append(base.frontend(options, name, plain, secure) + rules + _NO_ROUTE)
    return "".join(out)


def _map(hosts: Mapping[str, str]) -> str:
    return "".join(f"{k} {v}\n" for k, v in hosts.items())


def _routing(
    proxies: list[Proxy], options: HaproxyOptions, map_name: str
) -> tuple[dict[str, str], str]:
    """The host map (hostnames with one proxy at ``/``) and the frontend's rules."""
    groups: dict[str, list[Proxy]] = {}
    for proxy in proxies:
        groups.setdefault(proxy.hostname, []).append(proxy)
    hosts: dict[str, str] = {}
    exact: list[str] = []
    wild: list[str] = []
    for host, group in sorted(groups.items()):
        if len(group) == 1 and group[0].path_prefix == "/":
            hosts[word(host)] = backend_name(group[0].id)
            continue
        wildcard = host.startswith("*.")
        var = "txn.wild" if wildcard else "txn.host"
        extra = [] if wildcard else _fallbacks(host, group, groups)
        (wild if wildcard else exact).extend(_host_rules(var, host, group + extra))
    lookup = "    use_backend %[var({0}),map({1})] if {{ var({0}),map({1}) -m found }}\n"
    hosts_path = f"{options.conf_dir}/{map_name}"
    rules = (
        "".join(exact)
        + lookup.format("txn.host", quote(hosts_path))
        + "".join(wild)
        + lookup.format("txn.wild", quote(hosts_path))
    )
    return hosts, rules


def _host_rules(var: str, host: str, routes: list[Proxy]) -> list[str]:
    is_host = f"{{ var({var}) -m str {quote(host)} }}"
    lines = []
    for proxy in sorted(routes, key=lambda p: (-len(p.path_prefix), p.path_prefix)):
        prefix = proxy.path_prefix
        when = is_host
        if prefix != "/":
            exact, below = quote(prefix), quote(prefix + "/")
            when = f"{is_host} {{ path -m str {exact} }} || {is_host} {{ path -m beg {below} }}"
        lines.append(f"    use_backend {backend_name(proxy.id)} if {when}\n")
    lines.append(f"    use_backend {base.NOPROXY} if {is_host}\n")  # the host is taken
    return lines


def _fallbacks(host: str, group: list[Proxy], groups: Mapping[str, list[Proxy]]) -> list[Proxy]:
    """The same-project wildcard routes an exact host falls back to (router/table.py):
    those whose prefix no route of the host covers."""
    owners = {p.project for p in group}
    dot = host.find(".")
    if len(owners) != 1 or dot < 0:
        return []
    owner = owners.pop()
    return [
        p
        for p in groups.get("*." + host[dot + 1 :], [])
        if p.project == owner and not any(_covers(own.path_prefix, p.path_prefix) for own in group)
    ]


def _covers(prefix: str, path: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


# -- TLS ---------------------------------------------------------------------------------


def _certificates(
    parts: _Parts, certs: Mapping[str, Certificate], options: HaproxyOptions
) -> tuple[str, dict[str, str]]:
    """``crt-list.txt`` (one line per certificate, with the hostnames it is chosen for by
    SNI) and the PEM files (chain then key, one file, 0600)."""
    names: dict[str, list[str]] = {}
    groups: dict[str, list[Proxy]] = {}
    for proxy in parts.proxies:
        groups.setdefault(proxy.hostname, []).append(proxy)
    for host, group in sorted(groups.items()):
        cert = host_certificate(group, certs, parts.problems)
        if cert is not None:
            names.setdefault(cert.id, []).append(word(host))
    files = {}
    lines = []
    for cert_id, hosts in sorted(names.items()):
        cert = certs[cert_id]
        path = "certs/" + file_name("cert", cert.name, f"{cert.id}\0{cert.fingerprint}") + ".pem"
        files[path] = cert.chain_pem.rstrip("\n") + "\n" + cert.key_pem.rstrip("\n") + "\n"
        # crt-list lines take no quotes: the path is the operator's (checked for blanks
        # by the driver) and the names are words.
        lines.append(f"{options.conf_dir}/{path} {' '.join(hosts)}\n")
    return "".join(lines), files


# -- the file ----------------------------------------------------------------------------


_NO_ROUTE = f"    default_backend {base.NOPROXY}\n"


def _front(rules: str, options: HaproxyOptions, tls: bool) -> str:
    """Everything before the proxies' backends (it holds no runtime field) but the
    ports' frontends."""
    return base.head(options, tls) + base.frontend(options) + rules + _NO_ROUTE + base.noproxy()
