"""The feature-by-data-plane table of docs/dataplanes.md, as the conformance suite reads it.

The docs are the one place the table is written. A conformance case names its row with
``@pytest.mark.feature(KEY)``; where ``GAPS`` lists that row for a data plane, the case is
expected to fail there (``xfail(strict=True)``), and the reason is the row's cell for
that plane, read from the docs. tests/docs/test_dataplanes_table.py holds the two
together: every key names a row, every gap's cell says what the plane lacks, and every
cell that says "no" for a row the suite covers is a gap.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PLANES = ("builtin", "nginx", "haproxy")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "dataplanes.md"
HEADING = "## What each data plane can do"

# The rows the suite checks: key → the row's first cell, as written in the docs.
ROWS = {
    "routing": "exact host, one-level wildcard, longest path prefix on segment boundaries",
    "ownership": "a hostname belongs to one project; wildcard fallback only within that project",
    "round_robin": "round robin, weighted round robin",
    "least_conn": "least_conn",
    "active_health": "**active health checks**",
    "hash": "source_ip, consistent_hash (`header:`/`cookie:` key)",
    "backups": "backups",
    "backup_failover": "a backup answers at once when the last primary refuses the connection",
    "cookie_stickiness": "**cookie stickiness** (`cookie`, `app_cookie`)",
    "source_stickiness": "source_ip stickiness",
    "sni": "TLS per SNI with the project's certificate, the default otherwise",
    "redirect_hsts": "redirect HTTP → HTTPS (301), HSTS (only on HTTPS, the backend's own wins)",
    "websockets": "WebSockets",
    "forwarded": (
        "X-Forwarded-For/-Proto/-Host/-Port, `Forwarded`, replaced unless the peer is trusted"
    ),
    "hop_by_hop": "drop `Proxy` and the hop-by-hop headers",
    "underscores": "drop underscore spellings of Portway's headers (`X_Forwarded_For`)",
    "connection_named": "drop the headers a client names in `Connection`",
    "x_real_ip": "`X-Real-IP` from the client",
    "error_pages": (
        "Portway's error pages (404 noproxy, 502, 503 with Retry-After, 504, 400, 413, 414, 431, …)"
    ),
    "head_limits": "414 page for too long a request line, 431 page for too large a header block",
    "max_body": "`limits.max_body_bytes`",
    "tls_backends": "TLS backends (`backends[].tls`)",
    "privacy": "`privacy.forwarded_for` (`--forwarded-for`)",
    "framing": (
        "request framing refused with 400 and a close (a CL list or sign, two "
        "different CLs, bad chunk sizes)"
    ),
    "cl_and_te": "`Content-Length` with `Transfer-Encoding`: 400 and a close",
    "obs_fold": "obs-fold (a field line continued on the next): 400 and a close",
    "duplicate_cl": "two `Content-Length` lines with the same value: 400 and a close",
    "valid_framing": (
        "valid framing forwarded (a `Content-Length` with trailing spaces, chunked trailer fields)"
    ),
    "cl_tab": "a `Content-Length` with a trailing tab, forwarded",
    "absolute_form": "absolute-form target routed by its authority, forwarded in origin-form",
    "refused_502": "502 page for a backend that refuses the connection",
    "applying": "applying a change",
    "listen_port": (
        "`listen_port`, `protocol` (ports of their own: `http`, `https`, `tcp`,"
        " `tls-passthrough`; [listeners.md](listeners.md))"
    ),
    "proxy_protocol": "`stream.proxy_protocol` (PROXY protocol v2 to a relayed backend)",
    "rate_limits": (
        "`limits.rate`/`burst` (429 with `Retry-After` per client address), `--rate-limit`"
    ),
    "deny": "`limits.deny` (403 for client ranges), `--deny-client`",
    "cache": "`cache` (HTTP cache, RFC 9111)",
    "cache_status_detail": "`Cache-Status` names the origin's status on a miss (`fwd-status`)",
    "cache_revalidation": (
        "stale entries revalidated (`If-None-Match`, `If-Modified-Since`; a 304 refreshes them)"
    ),
    "cache_collapsed": "collapsed forwarding: concurrent misses make one origin request",
    "cache_key": "`cache.key` (the query left out, request headers in the key)",
    "cache_auth_public": (
        "`Authorization` answered from entries marked `public`, `s-maxage` or"
        " `must-revalidate` (RFC 9111 §3.5)"
    ),
    "cache_heuristic": "heuristic freshness (`Last-Modified` without a lifetime, RFC 9111 §4.2.2)",
    "cache_invalidation": "unsafe methods drop the stored responses of their target (§4.4)",
    "cache_age": "`Age` on answers from the cache",
    "stale_if_error": "`stale-if-error` (RFC 5861) for an origin's own 5xx",
    "purge": "`PURGE` method, `POST …/purge`",
    "purge_key": "`PURGE` opened by `purge.key` (`X-Purge-Key`)",
    "purge_partial": "`POST …/purge` by prefix and by surrogate key",
    "purge_variants": "a URL's purge drops every `Vary` variant of it",
}

# (row key, plane) pairs a plane does not pass; the reason is the docs cell.
GAPS = frozenset(
    {
        ("cookie_stickiness", "nginx"),
        ("connection_named", "nginx"),
        ("connection_named", "haproxy"),
        ("underscores", "haproxy"),
        ("absolute_form", "haproxy"),
        ("cl_and_te", "haproxy"),
        ("obs_fold", "haproxy"),
        ("duplicate_cl", "haproxy"),
        ("cl_tab", "nginx"),
        ("head_limits", "haproxy"),
        ("refused_502", "haproxy"),
        ("backup_failover", "haproxy"),
        ("proxy_protocol", "nginx"),
        ("cache_status_detail", "haproxy"),
        ("cache_revalidation", "haproxy"),
        ("cache_collapsed", "haproxy"),
        ("cache_key", "haproxy"),
        ("cache_auth_public", "nginx"),
        ("cache_auth_public", "haproxy"),
        ("cache_heuristic", "nginx"),
        ("cache_heuristic", "haproxy"),
        ("cache_invalidation", "nginx"),
        ("cache_age", "nginx"),
        ("stale_if_error", "nginx"),
        ("stale_if_error", "haproxy"),
        ("purge", "haproxy"),
        ("purge_key", "nginx"),
        ("purge_key", "haproxy"),
        ("purge_partial", "nginx"),
        ("purge_partial", "haproxy"),
        ("purge_variants", "nginx"),
        ("purge_variants", "haproxy"),
    }
)


@cache
def cells() -> dict[str, dict[str, str]]:
    """The table: first cell → {plane: cell}."""
    text = DOCS.read_text().split(HEADING, 1)[1]
    table: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.startswith("|"):
            if table:
                break
            continue
        row = [c.strip() for c in line.strip().strip("|").split("|")]
        if row[0] in ("feature", "") or set(row[0]) <= {"-", " "}:
            continue
        table[row[0]] = dict(zip(PLANES, row[1:], strict=True))
    return table


def gap(key: str, plane: str) -> str | None:
    """Why ``plane`` fails the cases of row ``key`` (its docs cell), or None."""
    if (key, plane) not in GAPS:
        return None
    return cells()[ROWS[key]][plane]
