"""Client limits on nginx: ``limit_req`` for ``limits.rate``/``burst`` and ``deny`` for
``limits.deny``, answered with Portway's 429 and 403 pages (nginx_http's named
locations).

- The rate: nginx takes whole requests per second or per minute; a rate that is neither
  is rounded to the nearest per minute (at least 1) and the proxy reported. Portway's
  ``burst`` counts every request back to back, nginx's only those beyond the first:
  ``burst=B-1 nodelay`` is the same bucket.
- One zone per proxy (``limit_req_zone``, in the proxy's http-level file), keyed by
  ``$binary_remote_addr``, 1 MiB: about 16 000 clients; when it is full nginx drops the
  least recently used states (and answers 429 if that does not free room).
- The key is nginx's peer. Behind ``--trusted-proxy`` the built-in plane limits the
  forwarded client instead; nginx would count every client of the trusted proxy as one,
  so there such a proxy is refused (``refusals``, the rule client_limits holds for
  both external planes).
- nginx sends ``Retry-After: 5`` with every 429 (the page's), not the time to the next
  token; its counters are shared by all its workers, so no share per worker applies.
"""

from __future__ import annotations

from collections.abc import Iterable

from portway.drivers import client_limits
from portway.drivers.nginx_syntax import quote, upstream_name
from portway.limits.bucket import Rate
from portway.model import Proxy

ZONE_SIZE = "1m"


def zone_name(proxy: Proxy) -> str:
    return upstream_name(proxy.id) + "_rl"


def nginx_rate(rate: float) -> str:
    """``rate`` requests a second as nginx writes it: ``Nr/s`` or ``Nr/m``."""
    if rate >= 1 and float(rate).is_integer():
        return f"{int(rate)}r/s"
    return f"{max(1, round(rate * 60))}r/m"


def refusals(proxy: Proxy, trusted_proxies: tuple[str, ...]) -> Iterable[tuple[str, str]]:
    """(field, message) of each client limit nginx cannot apply as Portway would: the
    rule both external planes share (client_limits)."""
    return client_limits.refusals(proxy, "nginx", trusted_proxies)


def degradations(proxy: Proxy) -> Iterable[tuple[str, str]]:
    rate = proxy.limits.rate
    if rate is not None and nginx_rate(rate) not in (f"{rate:g}r/s", f"{rate * 60:g}r/m"):
        yield "limits.rate", f"nginx counts whole requests a minute: applied as {nginx_rate(rate)}"


def zone_lines(proxy: Proxy) -> str:
    """The http-level zone of a proxy with a rate ("" for one without)."""
    rate = proxy.limits.rate
    if rate is None:
        return ""
    return (
        f"limit_req_zone $binary_remote_addr zone={zone_name(proxy)}:{ZONE_SIZE}"
        f" rate={nginx_rate(rate)};\n"
    )


def location_lines(proxy: Proxy, pad: str) -> list[str]:
    """The location's ``deny`` and ``limit_req`` lines (none without limits)."""
    limits = proxy.limits
    lines = [f"{pad}deny {quote(cidr)};\n" for cidr in limits.deny]
    if limits.rate is not None:
        burst = Rate.of(limits.rate, limits.burst).burst  # the built-in plane's default
        extra = f" burst={burst - 1} nodelay" if burst > 1 else ""  # nginx refuses burst=0
        lines += [
            f"{pad}limit_req zone={zone_name(proxy)}{extra};\n",
            f"{pad}limit_req_status 429;\n",
        ]
    return lines
