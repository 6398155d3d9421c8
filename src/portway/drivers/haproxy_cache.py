"""``cache.enabled`` on HAProxy (pure): a ``cache`` section per proxy, HAProxy's small
object cache in shared memory, used and filled by the proxy's backend, with an RFC 9211
``Cache-Status`` on every answer.

What HAProxy 2.6's cache does and Portway's does not (docs/caching.md, "On HAProxy"):
it stores only 200s that carry an explicit lifetime (``s-maxage``, ``max-age``,
``Expires``) or a validator, never revalidates, keys on the Host and the whole URI
(query included) and ``Vary`` on ``Accept-Encoding``/``Referer`` alone, and cuts every
lifetime at the section's ``max-age``. So:

- ``max-age`` is ``cache.default_ttl`` (whole seconds, at least 1) when the tenant gave
  one, else a day. Without a ``default_ttl`` only responses with an explicit lifetime
  are stored: one with a validator alone would otherwise be served for ``max-age``
  unrevalidated, where Portway's cache revalidates it;
- a response with ``Set-Cookie`` is never stored (HAProxy would: one client's cookie
  would go to every other);
- ``total-max-size`` is ``cache.max_bytes`` in whole MiB (1 to 4095, rounded up),
  ``max-object-size`` the smaller of half of it and ``MAX_OBJECT``: the cache is built
  for small objects, and a larger response passes uncached;
- a key HAProxy cannot build (``cache.key.query`` false, ``cache.key.headers``) leaves
  the proxy served without a cache, reported; a size it rounds is reported, served;
- all caches together stay within ``--haproxy-cache-memory`` (``over_budget``), taken
  by the proxies in id order: a proxy whose cache would pass it is served without one,
  reported.

``PURGE``: HAProxy can purge nothing, so on a caching proxy every ``PURGE`` is answered
501 with a JSON body saying so and never reaches the backend (a PURGE that reached the
origin would tell a client its URL was purged when nothing was); the API's purge counts
nothing on HAProxy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Final

from portway.drivers.haproxy_syntax import backend_name, quote
from portway.model import Proxy
from portway.model.proxy import STREAM_PROTOCOLS

MIB: Final = 1 << 20
MAX_OBJECT: Final = MIB  # HAProxy's cache is for small objects: larger ones pass uncached
_MOST_MIB: Final = 4095  # HAProxy 2.6's total-max-size bound
_NO_TTL_MAX_AGE: Final = 86_400  # a day: the cap on an explicit lifetime without default_ttl
PURGE_ANSWER: Final = json.dumps(
    {"error": "HAProxy cannot purge: its cached entries expire on their own (max-age)"}
)
# The request decides what a miss's Cache-Status says (docs/caching.md's values).
_MISS_REASONS: Final = (
    "    http-request set-var(txn.pw_cache) str(fwd=uri-miss)\n",
    "    http-request set-var(txn.pw_cache) str(fwd=request)"
    " if { req.hdr(authorization) -m found }\n",
    "    http-request set-var(txn.pw_cache) str(fwd=bypass) unless METH_GET\n",  # GET, HEAD
)
_EXPLICIT: Final = (
    "    acl pw_lifetime res.fhdr(cache-control) -m reg -i '(^|[ ,])(s-maxage|max-age)='\n"
    "    acl pw_lifetime res.hdr(expires) -m found\n"
)


def served(proxy: Proxy) -> bool:
    """Whether HAProxy caches for ``proxy``: enabled, with a key it can build."""
    cache = proxy.cache
    relayed = proxy.protocol in STREAM_PROTOCOLS  # no requests: nothing to cache
    return cache.enabled and cache.key.query and not cache.key.headers and not relayed


def memory_mib(proxy: Proxy) -> int:
    """What the proxy's cache takes of ``--haproxy-cache-memory`` (0 without one)."""
    return total_mib(proxy) if served(proxy) else 0


def over_budget(proxy: Proxy, used_mib: int, budget_mib: int) -> tuple[Proxy, str | None]:
    """``proxy`` as HAProxy serves it once ``used_mib`` of ``budget_mib`` is taken: as
    it is, or without its cache (with why) when its cache would not fit. HAProxy takes
    each cache's memory in full when it loads the configuration, so without this bound
    tenants' ``max_bytes`` could add up past the host's memory and every reload fail."""
    need = memory_mib(proxy)
    if need == 0 or used_mib + need <= budget_mib:
        return proxy, None
    off = replace(proxy, cache=replace(proxy.cache, enabled=False))
    return off, (
        f"this node's HAProxy caches are full ({used_mib} of --haproxy-cache-memory"
        f" {budget_mib} MiB taken, {need} MiB asked): served without a cache"
    )


def total_mib(proxy: Proxy) -> int:
    return min(_MOST_MIB, max(1, math.ceil(proxy.cache.max_bytes / MIB)))


def max_age(proxy: Proxy) -> int:
    ttl = proxy.cache.default_ttl
    return _NO_TTL_MAX_AGE if ttl is None else max(1, round(ttl))


def degradations(proxy: Proxy) -> Iterable[tuple[str, str]]:
    """(field, message) of what HAProxy's cache does otherwise than asked (served)."""
    cache = proxy.cache
    if not cache.enabled:
        return
    if not cache.key.query:
        yield "cache.key.query", "HAProxy keys its cache on the whole URI: served without a cache"
        return
    if cache.key.headers:
        message = "HAProxy cannot add request headers to its cache key: served without a cache"
        yield "cache.key.headers", message
        return
    if total_mib(proxy) * MIB != cache.max_bytes:
        yield "cache.max_bytes", f"HAProxy sizes its cache in whole MiB: {total_mib(proxy)} MiB"
    ttl = cache.default_ttl
    if ttl is not None and max_age(proxy) != ttl:
        yield "cache.default_ttl", f"HAProxy counts whole seconds: {max_age(proxy)} s"


def cache_name(proxy: Proxy) -> str:
    return backend_name(proxy.id) + "_c"


def request_rules(proxy: Proxy) -> list[str]:
    """After the limits: PURGE answered here, then the lookup."""
    if not served(proxy):
        return []
    answer = f"status 501 content-type application/json string {quote(PURGE_ANSWER)}"
    return [
        f"    http-request return {answer} if {{ method PURGE }}\n",
        *_MISS_REASONS,
        f"    http-request cache-use {cache_name(proxy)}\n",
    ]


def response_rules(proxy: Proxy) -> list[str]:
    """What is stored (see the module's list), and the ``Cache-Status`` of each answer."""
    if not served(proxy):
        return []
    store = (
        f"    http-response cache-store {cache_name(proxy)} if !{{ res.hdr(set-cookie) -m found }}"
    )
    explicit = proxy.cache.default_ttl is None
    return [
        *([_EXPLICIT] if explicit else []),
        store + (" pw_lifetime\n" if explicit else "\n"),
        "    http-response set-header Cache-Status 'portway; hit' if { res.cache_hit }\n",
        "    http-response set-header Cache-Status 'portway; %[var(txn.pw_cache)]'"
        " unless { res.cache_hit }\n",
    ]


def section(proxy: Proxy) -> str:
    """The proxy's ``cache`` section ("" when HAProxy does not cache for it)."""
    if not served(proxy):
        return ""
    total = total_mib(proxy)
    return (
        f"cache {cache_name(proxy)}\n"
        f"    total-max-size {total}\n"
        f"    max-object-size {min(MAX_OBJECT, total * MIB // 2)}\n"
        f"    max-age {max_age(proxy)}\n"
        "    process-vary on\n"
    )
