"""Request metrics kept as plain dict counters (one ``+=`` per request on the hot path)
and rendered in the Prometheus text format only when scraped. Each worker keeps its own
``RequestMetrics``; the control process merges their exports."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Latency buckets in seconds (Prometheus convention: upper bounds, +Inf implied).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

Key = tuple[str, str]  # (project, proxy hostname+prefix)
# Latency histograms are kept per project, not per proxy: with 100 000 proxies a
# per-proxy histogram is 1.5 million numbers for every worker to ship each second and
# for Prometheus to store; request counts stay per proxy.


@dataclass(slots=True)
class CacheCounters:
    """One project's HTTP cache figures in one worker (its proxies' caches add up here)."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    stored_bytes: int = 0

    def row(self) -> list[int]:
        return [self.hits, self.misses, self.evictions, self.stored_bytes]


_CACHE_SERIES = (
    ("portway_cache_hits_total", "Requests answered from the HTTP cache, by project."),
    ("portway_cache_misses_total", "Cacheable requests the cache could not answer, by project."),
    ("portway_cache_evictions_total", "Entries evicted to keep the cache in its bound."),
    ("portway_cache_stored_bytes", "Bytes held by the HTTP cache, by project (all workers)."),
)


@dataclass(slots=True)
class RequestMetrics:
    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)
    latency: dict[Key, list[float]] = field(default_factory=dict)  # bucket counts..., sum
    # Requests the client limits refused, by (project, reason): "rate" (429), "deny" (403).
    refused: dict[Key, int] = field(default_factory=dict)

    def refuse(self, project: str, reason: str) -> None:
        key = (project, reason)
        self.refused[key] = self.refused.get(key, 0) + 1

    cache: dict[str, CacheCounters] = field(default_factory=dict)  # by project

    # Relayed connections of tcp and tls-passthrough proxies (issue 13), by (project,
    # proxy, what): "connections", "bytes_in" (client → backend), "bytes_out".
    relayed: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def relay(self, project: str, proxy: str, bytes_in: int, bytes_out: int) -> None:
        """One relayed connection ended, having carried these bytes."""
        counts = self.relayed
        for what, n in (("connections", 1), ("bytes_in", bytes_in), ("bytes_out", bytes_out)):
            key = (project, proxy, what)
            counts[key] = counts.get(key, 0) + n

    def observe(self, project: str, proxy: str, status: int, seconds: float) -> None:
        klass = _CLASSES[min(max(status // 100, 1), 5) - 1]
        key3 = (project, proxy, klass)
        self.requests[key3] = self.requests.get(key3, 0) + 1
        key = (project, "")
        row = self.latency.get(key)
        if row is None:
            row = self.latency[key] = new_row()
        observe_into(row, seconds)

    def export(self) -> dict[str, object]:
        return {
            "requests": dict(self.requests),
            "latency": {k: list(v) for k, v in self.latency.items()},
            "refused": dict(self.refused),
            "cache": {project: c.row() for project, c in self.cache.items()},
            "relayed": dict(self.relayed),
        }


def merge(exports: Iterable[Mapping[str, object]]) -> RequestMetrics:
    total = RequestMetrics()
    for export in exports:
        requests = export["requests"]
        latency = export["latency"]
        assert isinstance(requests, dict) and isinstance(latency, dict)
        for k, n in requests.items():
            total.requests[k] = total.requests.get(k, 0) + n
        for k, row in latency.items():
            mine = total.latency.setdefault(k, new_row())
            for i, v in enumerate(row):
                mine[i] += v
        refused = export.get("refused", {})
        assert isinstance(refused, dict)
        for k, n in refused.items():
            total.refused[k] = total.refused.get(k, 0) + n
        cache = export.get("cache", {})
        assert isinstance(cache, dict)
        for project, figures in cache.items():
            counters = total.cache.setdefault(project, CacheCounters())
            hits, misses, evictions, stored = figures
            counters.hits += hits
            counters.misses += misses
            counters.evictions += evictions
            counters.stored_bytes += stored
        relayed = export.get("relayed", {})
        assert isinstance(relayed, dict)
        for k, n in relayed.items():
            total.relayed[k] = total.relayed.get(k, 0) + n
    return total


def _labels(**labels: str) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + inner + "}"


def new_row() -> list[float]:
    """A histogram's row: a count per bucket of ``BUCKETS``, +Inf's, then the sum."""
    return [0.0] * (len(BUCKETS) + 2)


def observe_into(row: list[float], seconds: float) -> None:
    row[bisect.bisect_left(BUCKETS, seconds)] += 1
    row[-1] += seconds


def histogram_lines(name: str, row: list[float], **labels: str) -> list[str]:
    """The _bucket, _sum and _count lines of one histogram series."""
    out = []
    cumulative = 0.0
    for bound, count in zip((*BUCKETS, float("inf")), row[:-1], strict=True):
        cumulative += count
        le = "+Inf" if bound == float("inf") else repr(bound)
        out.append(f"{name}_bucket{_labels(**labels, le=le)} {cumulative:g}")
    tail = _labels(**labels) if labels else ""
    out.append(f"{name}_sum{tail} {row[-1]:.6f}")
    out.append(f"{name}_count{tail} {cumulative:g}")
    return out


_RELAYED = {
    "connections": ("portway_relayed_connections_total", "Relayed connections that ended"),
    "bytes_in": ("portway_relayed_bytes_in_total", "Bytes relayed from clients to backends"),
    "bytes_out": ("portway_relayed_bytes_out_total", "Bytes relayed from backends to clients"),
}


def _relayed(metrics: RequestMetrics) -> list[str]:
    """The tcp and tls-passthrough counters, by project and proxy (``host:port/``)."""
    out: list[str] = []
    for what, (name, help_text) in _RELAYED.items():
        rows = sorted((k, n) for k, n in metrics.relayed.items() if k[2] == what)
        if not rows:
            continue
        out += [f"# HELP {name} {help_text}.", f"# TYPE {name} counter"]
        out += [f"{name}{_labels(project=k[0], proxy=k[1])} {n}" for k, n in rows]
    return out


def render(
    metrics: RequestMetrics,
    gauges: Mapping[str, tuple[str, Iterable[tuple[dict[str, str], float]]]],
    histograms: Mapping[str, tuple[str, list[float]]] | None = None,
) -> str:
    """Prometheus text exposition. ``gauges`` maps a metric name to (help, samples),
    ``histograms`` a name to (help, row) for a histogram of one series."""
    histograms = histograms or {}
    out = [
        "# HELP portway_requests_total Requests answered, by project, proxy and status class.",
        "# TYPE portway_requests_total counter",
    ]
    for (project, proxy, klass), n in sorted(metrics.requests.items()):
        out.append(f"portway_requests_total{_labels(project=project, proxy=proxy, code=klass)} {n}")
    out += [
        "# HELP portway_request_duration_seconds Request head to response end, by project.",
        "# TYPE portway_request_duration_seconds histogram",
    ]
    for (project, _), row in sorted(metrics.latency.items()):
        out += histogram_lines("portway_request_duration_seconds", row, project=project)
    for name, (help_text, row) in sorted(histograms.items()):
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        out += histogram_lines(name, row)
    out += [
        "# HELP portway_requests_refused_total Requests the client limits refused, by "
        "project and reason (rate: 429, deny: 403).",
        "# TYPE portway_requests_refused_total counter",
    ]
    for (project, reason), n in sorted(metrics.refused.items()):
        out.append(f"portway_requests_refused_total{_labels(project=project, reason=reason)} {n}")
    for i, (name, help_text) in enumerate(_CACHE_SERIES):
        if not metrics.cache:
            break
        kind = "counter" if name.endswith("_total") else "gauge"
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for project, counters in sorted(metrics.cache.items()):
            out.append(f"{name}{_labels(project=project)} {counters.row()[i]}")
    out += _relayed(metrics)
    for name, (help_text, samples) in sorted(gauges.items()):
        # Prometheus naming: a "_total" metric only ever grows, and is typed so.
        kind = "counter" if name.endswith("_total") else "gauge"
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels_dict, value in samples:
            labels = _labels(**labels_dict) if labels_dict else ""
            out.append(f"{name}{labels} {value:g}")
    return "\n".join(out) + "\n"
