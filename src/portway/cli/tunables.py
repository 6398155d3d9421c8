"""The data plane's limits and timeouts as ``portway serve`` flags.

One table drives the flags, their environment variables, their help and the docs, so a
new ``DataPlaneSettings`` field is one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from portway.dataplane.settings import DataPlaneSettings


@dataclass(frozen=True, slots=True)
class Tunable:
    field: str
    kind: type[int] | type[float]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    @property
    def envvar(self) -> str:
        return "PORTWAY_" + self.field.upper()


TUNABLES = (
    Tunable("connect_timeout", float, "Ceiling on connecting to a backend (seconds; → 502)."),
    Tunable("read_timeout", float, "Ceiling on waiting for backend bytes (seconds; → 504)."),
    Tunable("client_header_timeout", float, "Time a client has to send a request head (→ 408)."),
    Tunable("keepalive_timeout", float, "Idle time before a client keep-alive is closed."),
    Tunable("max_request_line", int, "Longest request line in bytes (→ 414)."),
    Tunable("max_header_bytes", int, "Largest request head in bytes (→ 431)."),
    Tunable(
        "upstream_pool_size",
        int,
        "Idle keep-alive connections per backend kept after a second without use.",
    ),
    Tunable(
        "max_connections", int, "Client connections per listener and data plane; more get 503."
    ),
    Tunable("passive_failures", int, "Consecutive failures/5xx that eject a backend."),
    Tunable("passive_backoff", float, "First ejection period (seconds); doubles on repeats."),
    Tunable("passive_max_backoff", float, "Longest ejection period (seconds)."),
    Tunable(
        "passive_max_ejection_percent",
        int,
        "Most of a proxy's backends passive checks may eject (%); never its last healthy one.",
    ),
)

_DEFAULTS = DataPlaneSettings()


def tunable_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per tunable; their values arrive as keyword arguments."""
    for tunable in reversed(TUNABLES):
        kind = click.IntRange(min=1) if tunable.kind is int else click.FloatRange(min=0.001)
        command = click.option(
            tunable.flag,
            tunable.field,
            type=kind,
            default=getattr(_DEFAULTS, tunable.field),
            show_default=True,
            envvar=tunable.envvar,
            help=tunable.help,
        )(command)
    return command


def settings_from(values: dict[str, Any], trusted: tuple[str, ...]) -> DataPlaneSettings:
    return DataPlaneSettings(
        trusted_proxies=trusted, **{t.field: values[t.field] for t in TUNABLES}
    )
