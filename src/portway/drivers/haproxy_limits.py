"""Client limits on HAProxy (pure): ``limits.rate``/``burst`` as a stick table per proxy,
``limits.deny`` and ``--deny-client`` as ``src`` ACLs, answered with Portway's 429 and
403 pages. A proxy without its own rate takes the node's (``Rate.for_proxy``, the rule
the built-in plane follows).

The rate. HAProxy 2.6 has no token bucket; it has rate counters over a period (a
sliding window: this period's count plus the last period's, weighted by how much of the
window still overlaps it). Portway's rate R with burst B becomes a window of B/R seconds
in which at most B requests pass: ``gpc_rate(1, B/R)`` in a table keyed by ``src``,
read before and raised only for a request that passes (``sc-inc-gpc``), so refused
requests cost a client nothing, as in a token bucket. Over time that is R a second,
with B back to back. Where it differs from the built-in plane's bucket:

- after a burst, the client waits until the current window ends (up to B/R seconds)
  before the next request passes, where a bucket lets one through every 1/R seconds;
  from then on the window's weighted count falls at R a second, as a bucket refills;
- ``Retry-After`` is that longest wait, ``ceil(B/R)`` seconds (at least 1), the same
  for every 429 of the proxy, not the time to the client's next token: a client that
  waits it passes;
- the window is in whole milliseconds (B/R rounded, at least 1 ms, at most about 11
  days): a rate it changes is reported, with the rate applied;
- the check and the count are two steps, so two requests of one client on two HAProxy
  threads at the same instant may both pass the last slot;
- the counters are the running worker's: a reload (any change HAProxy cannot take
  through its Runtime API, on any proxy) starts every client afresh.

Memory: the table holds at most ``--rate-limit-clients`` entries (HAProxy drops the
least recently used when it is full, as the built-in plane does), and an entry expires
two windows after its last request, when both periods of its count are empty and it is
as good as new. HAProxy's threads share one table, so no share per worker applies.

Banned ranges are files of CIDRs (``src -f``), one per proxy and one for the node: a
line of ``haproxy.cfg`` takes at most 64 words, and ``limits.deny`` holds up to 100.
Each CIDR is parsed again here and written in its canonical form, so nothing but an
address range reaches the file. IPv4-mapped IPv6 peers match IPv4 ranges (HAProxy's
``ip`` match converts them).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from portway.drivers import haproxy_base as base
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.haproxy_syntax import backend_name, quote
from portway.errors import ConfigError
from portway.limits.bucket import Rate
from portway.model import Proxy
from portway.protocol import pages

NODE_DENY: Final = "deny-node.acl"
_LONGEST_MS: Final = 1_000_000_000  # two windows stay within HAProxy's 2^31 ms expire


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``count`` requests pass in any ``period_ms`` (HAProxy's sliding count)."""

    period_ms: int
    count: int

    @classmethod
    def of(cls, rate: Rate) -> Window:
        period = round(rate.burst * 1000 / rate.per_second)
        return cls(min(_LONGEST_MS, max(1, period)), rate.burst)

    @property
    def per_second(self) -> float:
        return self.count * 1000 / self.period_ms

    @property
    def retry_after(self) -> int:
        """The longest a refused client waits: until the current window ends."""
        return max(1, math.ceil(self.period_ms / 1000))


def window(proxy: Proxy, options: HaproxyOptions) -> Window | None:
    """The proxy's window: its own rate, else the node's, else None."""
    limits = proxy.limits
    rate = Rate.for_proxy(limits.rate, limits.burst, options.rate_limit, options.rate_burst)
    return None if rate is None else Window.of(rate)


def _rounded(rate: Rate) -> str | None:
    found = Window.of(rate)
    if math.isclose(found.per_second, rate.per_second, rel_tol=1e-9):
        return None
    return (
        f"HAProxy counts over whole milliseconds: applied as {found.count} requests"
        f" in {found.period_ms} ms ({found.per_second:g} a second)"
    )


def degradations(proxy: Proxy, options: HaproxyOptions) -> Iterable[tuple[str, str]]:
    limits = proxy.limits
    if limits.rate is None:
        return  # the node's rate is the operator's: said once (node_degradation)
    message = _rounded(Rate.of(limits.rate, limits.burst))
    if message is not None:
        yield "limits.rate", message


def node_degradation(options: HaproxyOptions) -> str | None:
    """What HAProxy makes of ``--rate-limit``, when it is not the rate given."""
    rate = Rate.for_proxy(None, None, options.rate_limit, options.rate_burst)
    message = None if rate is None else _rounded(rate)
    return None if message is None else f"--rate-limit: {message}"


def acl(cidrs: Iterable[str]) -> str:
    """A ``src -f`` file: one canonical network a line (ConfigError for anything else)."""
    lines = []
    for cidr in cidrs:
        try:
            if not isinstance(cidr, str) or cidr != cidr.strip():
                raise ValueError(cidr)
            lines.append(f"{ipaddress.ip_network(cidr, strict=False)}\n")
        except ValueError:
            raise ConfigError(
                f"{cidr!r} is not an IPv4 or IPv6 range", field="limits.deny"
            ) from None
    return "".join(lines)


def _deny_file(proxy: Proxy) -> str:
    return f"deny/{backend_name(proxy.id)}.acl"


def _page_file(seconds: int) -> str:
    return f"{base.ERRORS}/429-{seconds}.http"


def table_name(proxy: Proxy) -> str:
    return backend_name(proxy.id) + "_rl"


def rules(proxy: Proxy, options: HaproxyOptions) -> list[str]:
    """The proxy's ``http-request`` lines: the node's and its own ranges, then its rate."""
    conf = options.conf_dir
    denied = "    http-request deny deny_status 403 if {{ src -f {} }}\n"
    lines = []
    if options.deny_clients:
        lines.append(denied.format(quote(f"{conf}/{NODE_DENY}")))
    if proxy.limits.deny:
        lines.append(denied.format(quote(f"{conf}/{_deny_file(proxy)}")))
    found = window(proxy, options)
    if found is not None:
        page = quote(f"{conf}/{_page_file(found.retry_after)}")
        lines += [
            f"    http-request track-sc0 src table {table_name(proxy)}\n",
            f"    http-request deny deny_status 429 errorfile {page}"
            f" if {{ sc_gpc_rate(0,0) ge {found.count} }}\n",
            "    http-request sc-inc-gpc(0,0)\n",  # only a request that passes is counted
        ]
    return lines


def table(proxy: Proxy, options: HaproxyOptions) -> str:
    """The stick table of a proxy with a rate, as a backend of its own ("" without one):
    the proxy's backend may hold a persistence table already, and a section holds one."""
    found = window(proxy, options)
    if found is None:
        return ""
    return (
        f"backend {table_name(proxy)}\n"
        f"    stick-table type ipv6 size {options.rate_limit_clients}"
        f" expire {2 * found.period_ms}ms store gpc_rate(1,{found.period_ms}ms)\n"
    )


def files(proxies: Iterable[Proxy], options: HaproxyOptions) -> dict[str, str]:
    """The range files and the 429 pages (one per ``Retry-After``) the proxies name."""
    out = {}
    if options.deny_clients:
        out[NODE_DENY] = acl(options.deny_clients)
    for proxy in proxies:
        if proxy.limits.deny:
            out[_deny_file(proxy)] = acl(proxy.limits.deny)
        found = window(proxy, options)
        if found is not None:
            page = pages.rate_limited(found.retry_after, close=False)
            out[_page_file(found.retry_after)] = page.decode("ascii")
    return out
