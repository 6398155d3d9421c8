"""``cache.enabled`` on nginx: ``proxy_cache`` and purge (pure text; docs/caching.md).

- One cache per project: ``proxy_cache_path cache/<project digest>`` with a
  ``keys_zone`` of its own, ``max_size`` the sum of the ``cache.max_bytes`` of the
  project's caching proxies (nginx's cache manager evicts the least recently used
  entries past it). Entries of two proxies never meet: the key starts with a digest of
  the proxy id.
- The key (``key``) is the proxy's digest, ``$host``, the target (``$request_uri``, or
  its path alone when ``cache.key.query`` is off) and the values of
  ``cache.key.headers``, separated by LF: no request header value can hold one, so two
  requests' keys are equal only when every part is.
- RFC 9111 as far as nginx goes: a request with ``Authorization``, or whose
  ``Cache-Control`` says ``no-cache``/``no-store`` (``Pragma: no-cache`` without it), goes
  to the backend (``proxy_cache_bypass``); with ``Authorization`` or ``no-store`` its
  answer is not stored either (``proxy_no_cache``). nginx itself refuses to store
  ``Set-Cookie``, ``private``, ``no-store``, ``no-cache`` and ``Vary: *`` answers and
  honours ``s-maxage``/``max-age``/``Expires``, ``stale-while-revalidate`` and
  ``stale-if-error`` (the latter only for a backend it cannot reach, not for an origin's
  5xx); ``proxy_cache_use_stale`` stays off, since its parameters would serve stale
  answers whose origin never allowed it. ``default_ttl`` is
  ``proxy_cache_valid`` for the statuses RFC 9111 §4.2.2 lets a cache guess for.
- Collapsed forwarding: ``proxy_cache_lock``, waiting up to the proxy's ``first_byte``
  timeout, as the built-in plane's waiters do. Revalidation: ``proxy_cache_revalidate``.
  ``Cache-Status`` is mapped from ``$upstream_cache_status`` (nginx_http's map).
- ``PURGE``: the proxy's ``geo`` (``purge.allow_from``) and a map of method and
  address decide (a ``purge.key`` cannot open it: only its salted hash is kept, which
  nginx cannot compute; reported by ``purge_degradations``); refused is ``return 403``
  (Portway's page), allowed is a rewrite to an internal location that runs Debian's
  ``libnginx-mod-http-cache-purge`` (2.3) on the same key (``purge_location``),
  answered as the built-in plane answers. Its same-location form (``proxy_cache_purge
  on``) crashes nginx 1.22's worker, so only the separate-location form is used. The
  API's purge reaches the same module through a location per proxy on the control
  socket, the key's host and target in request headers (``purge_requests``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

from portway.cache.store import Purge
from portway.drivers import nginx_http as http
from portway.drivers import nginx_limits
from portway.drivers.nginx_options import NginxOptions
from portway.drivers.nginx_syntax import digest, quote, upstream_name, var_suffix
from portway.errors import ConfigError, ValidationError
from portway.model import Proxy

CACHE_DIR: Final = "cache"  # under the nginx prefix
CONTROL_PURGE: Final = "/purge/"  # + the proxy's digest, on the control socket
HOST_HEADER: Final = "X-Portway-Host"  # the control socket's purge: the key's host
TARGET_HEADER: Final = "X-Portway-Target"  # and its target
# The statuses RFC 9111 §4.2.2 lets a cache give a lifetime of its own (cache/policy.py).
_GUESSABLE: Final = "200 203 204 300 301 308 404 405 410 414 501"
_MIN_KEYS_ZONE: Final = 1 << 20
_MAX_KEYS_ZONE: Final = 256 << 20


def cached(proxy: Proxy, options: NginxOptions) -> bool:
    """Whether the render gives ``proxy`` a cache: the one test for the render and the
    API's purge."""
    if not proxy.cache.enabled or options.cache_purge_module is None:
        return False
    return options.cache_refused is None and not any(True for _ in degradations(proxy))


def refusals(proxy: Proxy, options: NginxOptions) -> Iterable[tuple[str, str]]:
    """(field, message) of a caching proxy nginx cannot serve here."""
    if not proxy.cache.enabled:
        return
    if options.cache_purge_module is None:
        yield (
            "cache.enabled",
            "nginx's cache purge module is not installed (Debian's"
            " libnginx-mod-http-cache-purge): proxies with cache.enabled are refused",
        )
    elif options.cache_refused is not None:
        yield "cache.enabled", options.cache_refused


def degradations(proxy: Proxy) -> Iterable[tuple[str, str]]:
    """(field, message) of a caching proxy served without its cache: a key nginx cannot
    express would mix responses a client must not get for another's request."""
    if not proxy.cache.enabled:
        return
    for name in proxy.cache.key.headers:
        try:
            _header_variable(name)
        except ConfigError:
            yield (
                "cache.key.headers",
                f"nginx cannot name the header {name!r} in a cache key: served without cache",
            )
            return


def purge_degradations(proxy: Proxy) -> Iterable[tuple[str, str]]:
    """(field, message) of a ``PURGE`` setting nginx applies only in part."""
    if proxy.cache.enabled and proxy.purge.key_hash is not None:
        # Portway keeps only a salted SHA-256 of the key (docs/security.md), which
        # nginx's stock modules cannot compute: the key alone never opens PURGE here.
        yield (
            "purge.key",
            "nginx cannot check a purge key (Portway keeps only its salted hash): PURGE"
            " is accepted from purge.allow_from only",
        )


def _header_variable(name: str) -> str:
    return "$http_" + var_suffix(name.lower().replace("-", "_"))


def key(proxy: Proxy, host: str, target: str, headers: Sequence[str] | None = None) -> str:
    """The ``proxy_cache_key`` token: the one definition both the location and the
    purge locations use. ``host`` and ``target`` are nginx variables; ``headers`` the
    variables of the key's headers (None: the request's own)."""
    if headers is None:
        headers = [_header_variable(h) for h in proxy.cache.key.headers]
    parts = [digest(proxy.id, 20), host, target, *headers]
    return '"' + "\\n".join(parts) + '"'  # Portway's names only: nothing to escape


def _target(proxy: Proxy) -> str:
    return "$request_uri" if proxy.cache.key.query else "$portway_path"


def zone(project: str) -> str:
    return "portway_cache_" + digest(project, 20)


def paths(proxies: Iterable[Proxy], options: NginxOptions) -> str:
    """The ``proxy_cache_path`` of every project with a caching proxy (http level)."""
    sizes: dict[str, int] = {}
    for proxy in proxies:
        if cached(proxy, options):
            sizes[proxy.project] = sizes.get(proxy.project, 0) + proxy.cache.max_bytes
    lines = []
    for project, size in sorted(sizes.items()):
        name = zone(project)
        # About 128 bytes of zone per key, at one key per 8 KiB of entries, in powers
        # of two so the zone (which a reload starts afresh when it changes) rarely does.
        keys = min(_MAX_KEYS_ZONE, max(_MIN_KEYS_ZONE, _power_of_two(size // 64)))
        lines.append(
            f"proxy_cache_path {CACHE_DIR}/{digest(project, 20)} levels=1:2"
            f" keys_zone={name}:{keys // 1024}k max_size={size} inactive=1d"
            " use_temp_path=off;\n"
        )
    return "".join(lines)


def _power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def _name(proxy: Proxy) -> str:
    return upstream_name(proxy.id)


def maps(proxy: Proxy) -> str:
    """The http-level ``geo`` and ``map`` that decide a ``PURGE`` of this proxy:
    ``allow``, ``refuse``, or "" for any other method."""
    name = _name(proxy)
    # As the built-in plane reads them (dataplane/caching.py): host bits dropped.
    networks = (str(ipaddress.ip_network(c, strict=False)) for c in proxy.purge.allow_from)
    cidrs = "".join(f"    {quote(n)} 1;\n" for n in networks)
    lines = [f"geo ${name}_purge_from {{\n    default 0;\n{cidrs}}}\n"]
    lines.append(
        f'map "$request_method ${name}_purge_from" ${name}_purge {{\n'
        '    default "";\n    "~^PURGE 1$" allow;\n'
    )
    lines.append('    "~^PURGE " refuse;\n}\n')
    return "".join(lines)


def location_lines(proxy: Proxy, pad: str) -> list[str]:
    """The cache directives of the proxy's location, ``PURGE`` first (rewrite phase:
    a refused one never reaches the backend)."""
    name = _name(proxy)
    wait = max(1, round(proxy.timeouts.first_byte))
    lines = [
        f"{pad}if (${name}_purge = refuse) {{\n{pad}    return 403;\n{pad}}}\n",
        f"{pad}if (${name}_purge = allow) {{\n"
        f"{pad}    rewrite ^ {_purge_uri(proxy)} last;\n{pad}}}\n",
        f"{pad}proxy_cache {zone(proxy.project)};\n",
        f"{pad}proxy_cache_key {key(proxy, '$host', _target(proxy))};\n",
        f"{pad}proxy_cache_lock on;\n",
        f"{pad}proxy_cache_lock_timeout {wait}s;\n",
        f"{pad}proxy_cache_lock_age {wait}s;\n",
        f"{pad}proxy_cache_revalidate on;\n",
        f"{pad}proxy_cache_background_update on;\n",
        f"{pad}proxy_cache_bypass $portway_cache_skip;\n",
        f"{pad}proxy_no_cache $portway_cache_nostore;\n",
        f"{pad}add_header Cache-Status $portway_cache_status always;\n",
    ]
    ttl = proxy.cache.default_ttl
    if ttl is not None:
        lines.append(f"{pad}proxy_cache_valid {_GUESSABLE} {max(1, round(ttl))}s;\n")
    return lines


def _purge_uri(proxy: Proxy, step: str = "purge") -> str:
    # nginx removes "/./" from every client's path: no request can name these locations.
    return f"/./portway/{step}/{_name(proxy)}"


def purge_location(proxy: Proxy, pad: str, options: NginxOptions) -> str:
    """The locations an allowed ``PURGE`` is rewritten to. The module's own answer is a
    page naming the key and the cache file, so it runs in an ``auth_request``
    subrequest whose answer nobody sees; the client gets the built-in plane's answer:
    ``200 {"purged": 1}`` (from the control socket: ``return`` would answer before
    the subrequest ran) or ``404 {"purged": 0}`` (the subrequest's 404 is the
    ``auth_request``'s 500). The proxy's ``deny`` and rate still apply (the access
    phase comes after the rewrite)."""
    inner = pad + "    "
    limits = "".join(nginx_limits.location_lines(proxy, inner))
    none = f"@{_name(proxy)}_purged_none"
    socket = quote(f"http://unix:{options.control_socket}:/purged")
    return (
        f"{pad}location = {_purge_uri(proxy)} {{\n{inner}internal;\n{limits}"
        f"{inner}auth_request {_purge_uri(proxy, 'purge-do')};\n"
        f"{inner}auth_request_set ${_name(proxy)}_purged $status;\n"
        f"{http.error_pages(inner)}{inner}error_page 500 = {none};\n"
        f"{inner}proxy_pass {socket};\n"
        f"{inner}proxy_method GET;\n"
        f"{inner}proxy_pass_request_body off;\n"
        f'{inner}proxy_set_header Content-Length "";\n'
        f"{pad}}}\n"
        f"{pad}location = {_purge_uri(proxy, 'purge-do')} {{\n{inner}internal;\n"
        f"{inner}proxy_cache_purge {zone(proxy.project)}"
        f" {key(proxy, '$host', _target(proxy))};\n{pad}}}\n"
        f"{pad}location {none} {{\n"
        f"{inner}default_type application/json;\n"
        f'{inner}add_header Cache-Control "no-store" always;\n'
        f"{inner}if (${_name(proxy)}_purged = 404) {{\n"
        f"{inner}    return 404 {http.token(http.PURGED_NONE)};\n{inner}}}\n"
        f"{inner}return 500;\n{pad}}}\n"
    )


def control_locations(proxies: Iterable[Proxy], options: NginxOptions) -> str:
    """The control socket's purge location of every caching proxy (the API's purge)."""
    host = "$http_" + HOST_HEADER.lower().replace("-", "_")
    target = "$http_" + TARGET_HEADER.lower().replace("-", "_")
    return "".join(
        f"        location = {CONTROL_PURGE}{_name(p)} {{\n"
        f"            proxy_cache_purge {zone(p.project)} {key(p, host, target, [])};\n"
        "        }\n"
        for p in proxies
        if cached(p, options)
    )


def purge_requests(proxy: Proxy, purge: Purge) -> list[tuple[str, str, str]]:
    """(control path, host, target) of each request that carries out ``purge``; raises
    ValidationError for what nginx cannot purge (module 2.3 has no partial keys)."""
    if purge.prefixes:
        raise ValidationError("the nginx data plane cannot purge by prefix", field="purge.prefixes")
    if purge.tags:
        raise ValidationError("the nginx data plane cannot purge by key", field="purge.keys")
    if proxy.cache.key.headers and purge.urls:
        raise ValidationError(
            "the nginx data plane keys this proxy's entries by request headers: its URLs"
            " can be purged only by the PURGE method, with those headers",
            field="purge.urls",
        )
    out = []
    for host, target in purge.urls:
        name = proxy.hostname if host is None else host.decode("ascii").lower()
        if name.startswith("*."):
            raise ValidationError(
                "a wildcard proxy's URLs must name their host on nginx", field="purge.urls"
            )
        text = target.decode("ascii")
        if not proxy.cache.key.query:
            text = text.partition("?")[0]
        out.append((CONTROL_PURGE + _name(proxy), name, text))
    return out
