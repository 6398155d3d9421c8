"""Medians, ratios to nginx, the printed table and the JSON file."""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portway_bench.wrk import Result


@dataclass
class Results:
    """Every run, by scenario then target, plus memory figures and notes."""

    runs: dict[str, dict[str, list[Result]]] = field(default_factory=dict)
    peers: dict[str, str] = field(default_factory=dict)
    memory: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, scenario: str, target: str, result: Result) -> None:
        self.runs.setdefault(scenario, {}).setdefault(target, []).append(result)

    def summary(self, scenario: str, target: str) -> dict[str, float]:
        runs = self.runs[scenario][target]
        return {
            "rps": statistics.median(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "mbps": statistics.median(r.mbps for r in runs),
            "errors": sum(r.errors for r in runs),
            "runs": len(runs),
        }

    def ratio(self, scenario: str, target: str, key: str) -> float | None:
        peer = self.peers.get(target)
        if not peer or peer not in self.runs.get(scenario, {}):
            return None
        base = self.summary(scenario, peer)[key]
        return self.summary(scenario, target)[key] / base if base else None


def table(results: Results) -> str:
    lines = [
        f"{'scenario':<16}{'target':<13}{'req/s':>17}{'MB/s':>16}"
        f"{'p50 ms':>16}{'p99 ms':>16}{'errors':>8}"
    ]
    for scenario, targets in results.runs.items():
        for target in targets:
            s = results.summary(scenario, target)
            cells = [
                _cell(results, scenario, target, key, fmt)
                for key, fmt in (
                    ("rps", ".0f"),
                    ("mbps", ".1f"),
                    ("p50_ms", ".2f"),
                    ("p99_ms", ".2f"),
                )
            ]
            lines.append(
                f"{scenario:<16}{target:<13}{cells[0]:>17}{cells[1]:>16}"
                f"{cells[2]:>16}{cells[3]:>16}{int(s['errors']):>8}"
            )
        lines.append("")
    return "\n".join(lines)


def _cell(results: Results, scenario: str, target: str, key: str, fmt: str) -> str:
    """A median with its ratio to the nginx peer, e.g. '41234 (0.85x)'."""
    text = format(results.summary(scenario, target)[key], fmt)
    ratio = results.ratio(scenario, target, key)
    return f"{text} ({ratio:.2f}x)" if ratio is not None else f"{text}        "


def memory_table(results: Results) -> str:
    lines = [f"{'target':<13}{'state':<24}{'RSS MiB':>9}{'PSS MiB':>9}{'procs':>6}"]
    for target, states in results.memory.items():
        for state, m in states.items():
            if isinstance(m, dict):
                lines.append(
                    f"{target:<13}{state:<24}{m['rss_mib']:>9.1f}{m['pss_mib']:>9.1f}"
                    f"{m['processes']:>6}"
                )
    return "\n".join(lines)


def extra_text(results: Results) -> str:
    """Change propagation (f) and route-table set-up times, as plain lines."""
    lines = []
    for target, c in results.extra.get("churn", {}).items():
        w = c.get("wrk", {})
        server = c.get("server", {})
        lines.append(
            f"churn {target}: {c['changes']} changes, API→routed p50 {c['p50_ms']} ms "
            f"p99 {c['p99_ms']} ms, api_failed {c['api_failed']}, not routed in "
            f"{c['not_routed_in_s']:g} s {c['not_routed']}; load meanwhile "
            f"{w.get('rps', 0):.0f} req/s, {w.get('errors', '?')} failed requests; "
            f"node's own change→applied p50 ≤ {server.get('p50_le_ms')} ms, "
            f"p99 ≤ {server.get('p99_le_ms')} ms over {server.get('count')} snapshots"
        )
    for count, times in results.extra.get("routes_setup_s", {}).items():
        if not times:
            continue
        text = ", ".join(f"{name} {s:.1f} s" for name, s in times.items())
        lines.append(f"start-up with {count} proxies (until routed): {text}")
    for target, note in results.extra.get("notes", {}).items():
        lines.append(f"{target}: {note}")
    return "\n".join(lines)


def json_path(out_dir: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return out_dir / f"bench-{stamp}.json"


def write_json(results: Results, path: Path, options: dict[str, Any]) -> Path:
    """Write everything measured so far (called after every scenario, so an interrupted
    run keeps its figures) and copy it to latest.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = path.stem.removeprefix("bench-")
    doc = {
        "when": stamp,
        "machine": {"cpus": _cpus(), "platform": platform.platform()},
        "options": options,
        "scenarios": {
            scenario: {
                target: {
                    "median": results.summary(scenario, target),
                    "peer": results.peers.get(target),
                    "ratio_to_peer": {
                        k: results.ratio(scenario, target, k)
                        for k in ("rps", "mbps", "p50_ms", "p99_ms")
                    },
                    "runs": [r.as_dict() for r in runs],
                }
                for target, runs in targets.items()
            }
            for scenario, targets in results.runs.items()
        },
        "memory": results.memory,
        "extra": results.extra,
        "skipped": results.skipped,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    (path.parent / "latest.json").write_text(path.read_text())
    return path


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
