"""Tunables of the built-in data plane: a small frozen value object, like httpx's Limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portway.router.tools import ToolDomains


@dataclass(frozen=True, kw_only=True, slots=True)
class DataPlaneSettings:
    """Limits and timeouts (seconds) of one data plane.

    ``connect_timeout`` and ``read_timeout`` are node-wide ceilings: a proxy's own
    ``timeouts.connect`` / ``first_byte`` / ``idle`` apply when they are shorter.
    """

    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-*/Forwarded are appended to
    forwarded_for: bool = True  # the client's address upstream, unless a proxy says otherwise
    connect_timeout: float = 5.0
    read_timeout: float = 60.0  # upstream first byte / idle between bytes → 504
    client_header_timeout: float = 10.0  # slowloris guard → 408 and close
    keepalive_timeout: float = 75.0  # idle client keep-alive
    max_request_line: int = 8192  # → 414
    max_header_bytes: int = 32768  # → 431
    upstream_pool_size: int = 64  # idle keep-alive conns kept per backend past a sweep tick
    max_connections: int = 10_000  # per listener; beyond it new clients get 503 + close
    passive_failures: int = 3  # consecutive backend failures that eject it (health.passive)
    passive_backoff: float = 10.0  # first ejection; doubles on repeated ejections
    passive_max_backoff: float = 300.0
    passive_max_ejection_percent: int = 50  # of a proxy's backends; never its last healthy one
    upstream_ca_file: Path | None = None  # verify TLS backends against it (tls/upstream.py)
    healthz_path: str = ""  # answered by the data plane itself on every host ("": off)
    toolforge: ToolDomains | None = None  # Toolforge tool routing (router/tools.py); None: off
    # Client limits (docs/limits.md), for proxies whose limits.rate is null; 0: none.
    rate_limit: float = 0.0  # requests a second per client address → 429
    rate_burst: int = 0  # requests back to back; 0: one second's worth
    rate_limit_clients: int = 100_000  # client buckets kept per proxy and worker, at most
    deny_clients: tuple[str, ...] = ()  # CIDRs whose clients get 403 on every proxy
    # Workers sharing the listeners (set by the worker pool, not a flag): each enforces
    # 1/rate_share of every rate and burst, so the node as a whole holds the rate.
    rate_share: int = 1
