"""Rendering API objects for people (aligned plain-text tables) and for programs (JSON, YAML).

Tables are plain aligned columns, with no colour or box drawing, so they survive
``grep``, ``cut`` and narrow terminals. JSON and YAML print the object as the API sent
it, without the envelope, so ``portway proxy show x -f json | jq .hostname`` works.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click
import yaml

FORMATS = ("table", "json", "yaml")
EMPTY = "-"


def emit(data: Any, fmt: str, *, columns: Sequence[str] = ()) -> None:
    """Print ``data`` (an object or a list of objects) in format ``fmt``."""
    click.echo(render(data, fmt, columns=columns))


def render(data: Any, fmt: str, *, columns: Sequence[str] = ()) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")
    if isinstance(data, list):
        return render_table(data, columns)
    if isinstance(data, Mapping):
        return render_record(data)
    return cell(data)


def render_table(rows: Sequence[Mapping[str, Any]], preferred: Sequence[str] = ()) -> str:
    """Aligned columns with a header line; ``preferred`` columns that no row has are dropped."""
    columns = pick_columns(rows, preferred)
    if not columns:
        return "(none)"
    lines = [[name.upper() for name in columns]]
    lines += [[cell(row.get(name)) for name in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(_join(line, widths) for line in lines)


def render_record(obj: Mapping[str, Any]) -> str:
    """One object as ``key  value`` lines; lists of objects follow as their own tables."""
    scalars = {k: v for k, v in obj.items() if not _is_rows(v)}
    width = max((len(k) for k in scalars), default=0)
    parts = ["\n".join(f"{k.ljust(width)}  {cell(v)}" for k, v in scalars.items())]
    for key, value in obj.items():
        if _is_rows(value):
            parts.append(f"{key}:\n" + render_table(value, _preferred_nested(key)))
    return "\n\n".join(p for p in parts if p)


def pick_columns(rows: Iterable[Mapping[str, Any]], preferred: Sequence[str]) -> list[str]:
    rows = list(rows)
    present = {key for row in rows for key in row}
    chosen = [name for name in preferred if name in present]
    if chosen or not rows:
        return chosen
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def cell(value: Any) -> str:
    """One value as table text: nested objects compactly, missing values as '-'."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or EMPTY
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) or EMPTY
    return str(value)


def _join(line: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


# Column choices shared by the commands and by nested tables in records.
PROJECT_COLUMNS = ("id", "name", "created_at")
TOKEN_COLUMNS = ("id", "project", "role", "description", "secret", "created_at")
PROXY_COLUMNS = (
    "id",
    "hostname",
    "path_prefix",
    "listener",
    "backend_port",
    "algorithm",
    "backends",
)
BACKEND_COLUMNS = ("id", "address", "port", "tls", "weight", "backup", "health", "source")
NODE_COLUMNS = ("name", "addresses", "version", "applied_revision", "digest", "last_seen", "lost")
ZONE_COLUMNS = ("name", "project", "shared", "shared_host", "default", "deprecated")


def _preferred_nested(key: str) -> Sequence[str]:
    return BACKEND_COLUMNS if key == "backends" else ()
