"""RFC 9111 as a shared cache, free of I/O: what may be stored, for how long, and what a
request for a stored response gets.

Every function takes header values (bytes, as the parsers hand them over) and times
(seconds, from an injected clock) and returns a value; the data plane acts on it.

- Storing (§3): GET only; a final status this module understands; never with
  ``no-store`` (request or response) or ``private``; with ``Authorization`` only when the
  response says ``public``, ``s-maxage`` or ``must-revalidate`` (§3.5); never with
  ``Set-Cookie`` (one client's cookie would be handed to every other) nor ``Vary: *``.
  A response needs explicit freshness, a validator, or a status that is heuristically
  cacheable (§4.2.2), or the tenant's ``default_ttl``.
- Freshness (§4.2.1): ``s-maxage``, then ``max-age``, then ``Expires`` minus ``Date``, then the
  tenant's ``default_ttl``, then 10 % of ``Date`` minus ``Last-Modified`` (at most a day),
  the heuristic §4.2.2 allows only for its listed statuses and without explicit
  freshness. Age (§4.2.3) is corrected for the origin's own ``Age`` and the round trip.
- Serving (§4): fresh → a hit; stale → revalidate, unless ``stale-while-revalidate``
  (RFC 5861) covers it (then the stale answer goes out and a refresh starts), and never
  stale past ``must-revalidate``/``proxy-revalidate``/``s-maxage`` (§4.2.4). ``no-cache``
  (response, or request, or a request ``max-age=0``) means revalidate every time.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

# §4.2.2's heuristically cacheable statuses; 206 is left out (no range support here).
HEURISTIC: Final = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
# Statuses stored at all: the heuristic ones, plus redirects with explicit freshness.
UNDERSTOOD: Final = HEURISTIC | {302, 303, 307}
MAX_DELTA: Final = 2**31  # §1.2.2: a delta-seconds too large to hold reads as this
HEURISTIC_FRACTION: Final = 0.1
HEURISTIC_CAP: Final = 86400.0

Directives = Mapping[str, str | None]
NONE: Final[Directives] = {}


def parse_cache_control(values: Iterable[bytes]) -> Directives:
    """``Cache-Control`` field values → directive (lower case) → argument (unquoted) or
    None. Malformed members are skipped; the first of a repeated directive wins
    (§4.2.1 says such a response is stale, which the caller gets from ``max-age=0``)."""
    found: dict[str, str | None] = {}
    for raw in values:
        for member in _split(raw.decode("latin-1")):
            name, eq, arg = member.partition("=")
            name = name.strip().lower()
            if not name or name in found:
                if name in ("max-age", "s-maxage") and eq:
                    found[name] = "0"  # conflicting lifetimes: treat as stale
                continue
            value = arg.strip() if eq else None
            if value is not None and len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"')
            found[name] = value
    return found


def _split(text: str) -> list[str]:
    """Comma-separated members, commas inside quoted strings kept (``no-cache="a, b"``)."""
    out, start, quoted = [], 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [m for m in (p.strip() for p in out) if m]


def delta_seconds(value: str | None) -> int | None:
    """§1.2.2: non-negative digits, or None (then the directive is ignored)."""
    if value is None or not value.isdigit() or not value.isascii():
        return None
    return min(int(value), MAX_DELTA)


def http_date(value: bytes | None) -> float | None:
    """An HTTP-date (§5.6.7 of RFC 9110, all three forms) as a Unix time, or None."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class Response:
    """The facts of a response head that the rules read (header names lower case)."""

    status: int
    directives: Directives
    date: float | None = None
    expires: bytes | None = None  # raw: an invalid Expires means "already expired"
    last_modified: float | None = None
    age: int = 0
    etag: bytes | None = None
    vary: tuple[str, ...] = ()  # lower-case field names; ("*",) for Vary: *
    set_cookie: bool = False


def storable(
    method: bytes,
    request: Directives,
    response: Response,
    *,
    authorized: bool,
    default_ttl: float | None,
) -> bool:
    """§3: whether a shared cache may store ``response`` to this request."""
    if method != b"GET" or response.status not in UNDERSTOOD:
        return False
    rd = response.directives
    if "no-store" in request or "no-store" in rd or "private" in rd:
        return False
    if authorized and not ("public" in rd or "s-maxage" in rd or "must-revalidate" in rd):
        return False  # §3.5
    if response.set_cookie or "*" in response.vary:
        return False
    if has_explicit_freshness(response) or "public" in rd:
        return True
    if response.status in HEURISTIC:
        return default_ttl is not None or _validator(response) or _heuristic(response) > 0
    return False


def has_explicit_freshness(response: Response) -> bool:
    rd = response.directives
    return "s-maxage" in rd or "max-age" in rd or response.expires is not None


def _validator(response: Response) -> bool:
    return response.etag is not None or response.last_modified is not None


def lifetime(response: Response, default_ttl: float | None) -> float:
    """§4.2.1: the freshness lifetime in seconds (0: stale at once)."""
    rd = response.directives
    for name in ("s-maxage", "max-age"):  # a shared cache reads s-maxage first
        if name in rd:
            seconds = delta_seconds(rd[name])
            return float(seconds) if seconds is not None else 0.0
    if response.expires is not None:
        expires = http_date(response.expires)
        if expires is None or response.date is None:
            return 0.0  # §5.3: an invalid Expires is in the past
        return max(0.0, expires - response.date)
    if default_ttl is not None:
        return default_ttl
    if response.status in HEURISTIC:
        return _heuristic(response)
    return 0.0


def _heuristic(response: Response) -> float:
    """§4.2.2: a fraction of the time since Last-Modified, capped."""
    if response.last_modified is None or response.date is None:
        return 0.0
    since = response.date - response.last_modified
    return min(HEURISTIC_CAP, max(0.0, since * HEURISTIC_FRACTION))


def initial_age(response: Response, request_time: float, response_time: float) -> float:
    """§4.2.3's corrected_initial_age, from the origin's Date and Age and our clock."""
    apparent = 0.0 if response.date is None else max(0.0, response_time - response.date)
    corrected = response.age + (response_time - request_time)
    return max(apparent, corrected)


# What serve() decides.
HIT: Final = "hit"
STALE_WHILE_REVALIDATE: Final = "swr"  # serve the stale answer, refresh in the background
REVALIDATE: Final = "revalidate"  # ask the origin with validators (or forward if none)


@dataclass(frozen=True, slots=True)
class Freshness:
    """What is kept with a stored response to judge it later."""

    lifetime: float
    initial_age: float
    stored_at: float  # our clock when the response arrived
    directives: Directives

    def age(self, now: float) -> float:
        return self.initial_age + max(0.0, now - self.stored_at)


def freshness(
    response: Response, default_ttl: float | None, request_time: float, response_time: float
) -> Freshness:
    return Freshness(
        lifetime(response, default_ttl),
        initial_age(response, request_time, response_time),
        response_time,
        response.directives,
    )


def serve(kept: Freshness, request: Directives, now: float) -> str:
    """§4.2 and §4.3: HIT, STALE_WHILE_REVALIDATE or REVALIDATE for a matching entry."""
    rd = kept.directives
    if "no-cache" in rd or "no-cache" in request:
        return REVALIDATE
    age = kept.age(now)
    limit = kept.lifetime
    max_age = delta_seconds(request.get("max-age")) if "max-age" in request else None
    if max_age is not None:
        limit = min(limit, float(max_age))
    min_fresh = delta_seconds(request.get("min-fresh")) if "min-fresh" in request else None
    if min_fresh is not None:
        age += min_fresh
    if age < limit:
        return HIT
    if _never_stale(rd):
        return REVALIDATE
    window = delta_seconds(rd.get("stale-while-revalidate"))
    if window is not None and age < kept.lifetime + window and max_age is None:
        return STALE_WHILE_REVALIDATE
    return REVALIDATE


def _never_stale(rd: Directives) -> bool:
    # §5.2.2.2, §5.2.2.8, §5.2.2.10: a shared cache never serves these stale unchecked.
    return "must-revalidate" in rd or "proxy-revalidate" in rd or "s-maxage" in rd


def usable_on_error(kept: Freshness, now: float) -> bool:
    """RFC 5861 ``stale-if-error``: a stale entry may answer for an origin error."""
    if _never_stale(kept.directives):
        return False
    window = delta_seconds(kept.directives.get("stale-if-error"))
    return window is not None and kept.age(now) < kept.lifetime + window


def request_directives(cache_control: bytes | None, pragma: bytes | None) -> Directives:
    """A request's directives; ``Pragma: no-cache`` counts only without Cache-Control
    (§5.4)."""
    if cache_control is not None:
        return parse_cache_control((cache_control,))
    if pragma is not None and b"no-cache" in pragma.lower():
        return {"no-cache": None}
    return NONE


def authorization_allows(kept: Freshness) -> bool:
    """§3.5 again at lookup: an entry stored without the permission is never served to a
    request with Authorization (that request bypasses the cache instead)."""
    rd = kept.directives
    return "public" in rd or "s-maxage" in rd or "must-revalidate" in rd
