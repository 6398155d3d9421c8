"""One proxy's ``backend`` section of ``haproxy.cfg`` (pure): balancing, timeouts,
redirect and HSTS, the body limit, client limits (haproxy_limits), the cache
(haproxy_cache), health checks, stickiness and its server slots.

A slot is a ``server`` line: a member, or a disabled spare the Runtime API can fill.
``section`` returns the text twice, in full and with what the Runtime API sets masked
(an IP member's address, every weight and which slots are enabled), which is what
``haproxy_plan`` compares to decide whether a reload is needed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from portway.drivers import haproxy_base as base
from portway.drivers import haproxy_cache, haproxy_limits
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.haproxy_syntax import backend_name, comment, fetch_name, quote
from portway.health.expect import parse_expected_codes
from portway.model import Backend, Proxy
from portway.model.proxy import STREAM_PROTOCOLS

DYNAMIC = "<runtime>"  # what the masked text shows in place of a value the Runtime API sets
EMPTY_ADDRESS = ("127.0.0.1", 1)  # a spare slot's placeholder (disabled: never used)


@dataclass(frozen=True, slots=True)
class Slot:
    """One ``server`` line: a member of the proxy, or a disabled spare."""

    name: str
    member: str | None  # the Backend id, None for a spare
    address: str = EMPTY_ADDRESS[0]
    port: int = EMPTY_ADDRESS[1]
    weight: int = 1
    backup: bool = False
    tls: bool = False  # spoken to over TLS (Backend.tls); part of the static text
    down: bool = False  # declared down by Portway's active checks: in maintenance

    @property
    def live(self) -> bool:
        return self.member is not None

    @property
    def by_ip(self) -> bool:
        """The Runtime API can set this slot's address (``set server addr`` takes an IP;
        a hostname member is resolved when HAProxy loads the file)."""
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            return False
        return True


def section(proxy: Proxy, slots: tuple[Slot, ...], options: HaproxyOptions) -> tuple[str, str]:
    """The ``backend`` section, in full and with the runtime fields masked."""
    lines = [f"backend {backend_name(proxy.id)}\n", "    " + comment(f"proxy {proxy.id}")]
    lines.append("    " + comment(f"project {proxy.project}"))
    lines += _balance(proxy)
    if proxy.protocol in STREAM_PROTOCOLS:
        return _stream(proxy, slots, options, lines)
    timeouts = proxy.timeouts
    lines += [
        f"    timeout connect {base.ms(timeouts.connect)}\n",
        f"    timeout server {base.ms(max(timeouts.first_byte, timeouts.idle))}\n",
        f"    timeout tunnel {base.ms(timeouts.websocket_idle)}\n",
    ]
    if proxy.tls.redirect_http and options.https:
        lines.append(base.redirect(options))
    if proxy.tls.hsts and (options.https or proxy.protocol == "https"):
        lines.append(base.hsts())
    size = proxy.limits.max_body_bytes
    if size is not None:
        too_large = f"{{ req.hdr_val(content-length) gt {size} }}"
        lines.append(f"    http-request deny deny_status 413 if {too_large}\n")
    lines += haproxy_limits.rules(proxy, options)  # after the 413, as the built-in plane
    lines += haproxy_cache.request_rules(proxy)  # refused requests never reach the cache
    lines += haproxy_cache.response_rules(proxy)
    if not proxy.privacy.sends_client_address(options.forwarded_for):
        # After the frontend's rules: neither ours nor any the client sent (model.Privacy).
        lines += ["    http-request del-header X-Forwarded-For\n"]
        lines += ["    http-request del-header Forwarded\n"]
    lines += _health(proxy, options.passive_failures)
    lines += persistence(proxy)
    head = "".join(lines)
    cookie = proxy.session_persistence is not None and proxy.session_persistence.type == "cookie"
    ca = options.upstream_ca_file
    full = "".join(_server(s, cookie, ca, masked=False) for s in slots)
    static = "".join(_server(s, cookie, ca, masked=True) for s in slots)
    tail = haproxy_limits.table(proxy, options) + haproxy_cache.section(proxy)
    return head + full + tail, head + static + tail


def _stream(
    proxy: Proxy, slots: tuple[Slot, ...], options: HaproxyOptions, lines: list[str]
) -> tuple[str, str]:
    """A ``tcp`` or ``tls-passthrough`` proxy's backend (docs/listeners.md): bytes
    relayed, the connect and idle timeouts, a connection limit that closes at once (as
    the built-in plane's), PROXY protocol v2 towards the members when asked."""
    lines.insert(3, "    mode tcp\n")  # after the section line and its comments
    lines += [
        f"    timeout connect {base.ms(proxy.timeouts.connect)}\n",
        f"    timeout server {base.ms(proxy.timeouts.idle)}\n",
    ]
    limit = proxy.stream.max_connections
    if limit is not None:
        # be_conn counts this connection too: the one past the limit is closed.
        lines.append(f"    tcp-request content reject if {{ be_conn gt {limit} }}\n")
    lines += _health(proxy, options.passive_failures)
    head = "".join(lines)
    extra = " send-proxy-v2" if proxy.stream.proxy_protocol else ""
    ca = options.upstream_ca_file
    full = "".join(_server(s, False, ca, masked=False, extra=extra) for s in slots)
    static = "".join(_server(s, False, ca, masked=True, extra=extra) for s in slots)
    return head + full, head + static


def _balance(proxy: Proxy) -> list[str]:
    algorithm = proxy.algorithm
    if algorithm == "least_conn":
        return ["    balance leastconn\n"]
    if algorithm == "random":
        return ["    balance random(2)\n"]
    if algorithm in ("source_ip", "consistent_hash"):
        # Consistent hashing keeps most keys on their server when members change, and
        # lets weights change at runtime (map-based hashing cannot).
        return [f"    balance {hash_fetch(proxy)}\n", "    hash-type consistent\n"]
    return ["    balance roundrobin\n"]


def hash_fetch(proxy: Proxy) -> str:
    if proxy.algorithm != "consistent_hash" or proxy.hash_key is None:
        return "source"
    kind, _, name = proxy.hash_key.partition(":")
    if kind == "header":
        return f"hdr({fetch_name(name)})"
    return f"hash req.cook({fetch_name(name)})"


def effective(proxy: Proxy, member: Backend) -> Backend:
    """The member with the weight HAProxy is given: plain round robin takes each backend
    in turn whatever its weight (docs/dataplane.md); weight 0 drains it (no new
    requests, persistent sessions finish) with every algorithm."""
    if member.weight == 0 or proxy.algorithm != "round_robin":
        return member
    return replace(member, weight=1)


def _server(slot: Slot, cookie: bool, ca_file: str | None, *, masked: bool, extra: str = "") -> str:
    # The Runtime API sets any slot's weight and state, and an IP member's address.
    address = f"[{slot.address}]" if ":" in slot.address else slot.address
    where = DYNAMIC if masked and slot.by_ip else f"{address}:{slot.port}"
    state = "" if masked or (slot.live and not slot.down) else " disabled"
    weight = DYNAMIC if masked else str(slot.weight)
    extra += (" backup" if slot.backup else "") + (f" cookie {slot.name}" if cookie else "")
    # In the masked text too: a member turning TLS on or off is a reload, not a command.
    extra += _tls(slot, ca_file) if slot.tls else ""
    return f"    server {slot.name} {where} weight {weight}{state}{extra}\n"


def _tls(slot: Slot, ca_file: str | None) -> str:
    """Without ``--upstream-ca-file``: encrypted, not verified (tls/upstream.py). With it:
    the chain must reach that file's CAs, and a member named by a hostname must be that
    name (``verifyhost``, also sent as SNI). HAProxy cannot check an IP address against
    the certificate: such a member's chain is checked, its address is not (reported)."""
    if ca_file is None:
        return " ssl verify none"
    text = f" ssl verify required ca-file {quote(ca_file)}"
    if slot.by_ip:
        return text
    return text + f" verifyhost {quote(slot.address)} sni {quote('str(' + slot.address + ')')}"


def _health(proxy: Proxy, passive_failures: int) -> list[str]:
    """Active checks on every member: the proxy's own HTTP or TCP check, or the OpenStack
    HA guide's TCP default (``inter 2000 rise 2 fall 5``)."""
    check = proxy.health_check
    # Passive too: refused connections mark a member down at once (like Portway's own
    # outlier detection), and the active checks bring it back.
    passive = f" observe layer4 error-limit {passive_failures} on-error mark-down"
    if check is None:
        return [f"    default-server check inter 2000 rise 2 fall 5{passive}\n"]
    lines = [f"    timeout check {base.ms(check.timeout)}\n"]
    if check.type == "http":
        host = check.host or proxy.hostname.removeprefix("*.")
        lines += [
            "    option httpchk\n",
            f"    http-check send meth {quote(check.method)} uri {quote(check.path)}"
            f" ver HTTP/1.1 hdr Host {quote(host)}\n",
            f"    http-check expect rstatus {quote(_status_regex(check.expected_codes))}\n",
        ]
    lines.append(
        f"    default-server check inter {base.ms(check.interval)}"
        f" rise {check.rise} fall {check.fall}{passive}\n"
    )
    return lines


def _status_regex(expected: str) -> str:
    """The accepted codes as one anchored regex, whole hundreds and tens folded."""
    codes = parse_expected_codes(expected)
    parts = []
    for hundred in range(1, 6):
        tens = [t for t in range(10) if all(hundred * 100 + t * 10 + u in codes for u in range(10))]
        if len(tens) == 10:
            parts.append(f"{hundred}[0-9][0-9]")
            continue
        parts += [f"{hundred}{t}[0-9]" for t in tens]
        parts += [
            str(c) for c in sorted(codes) if c // 100 == hundred and (c // 10) % 10 not in tens
        ]
    return "^(" + "|".join(parts) + ")$"


def persistence(proxy: Proxy) -> list[str]:
    persistence = proxy.session_persistence
    if persistence is None:
        return []
    if persistence.type == "source_ip":
        return [
            "    stick-table type ipv6 size 100k expire 30m\n",
            "    stick on src\n",
        ]
    if persistence.type == "cookie":
        name = fetch_name(persistence.cookie_name or "PORTWAY_SRV")
        return [f"    cookie {name} insert indirect nocache httponly\n"]
    name = fetch_name(persistence.cookie_name or "JSESSIONID")
    return [
        "    stick-table type string len 128 size 100k expire 30m\n",
        f"    stick on req.cook({name})\n",
        f"    stick store-response res.cook({name})\n",
    ]
