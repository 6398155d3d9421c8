"""Where ``portway serve`` settings come from, and what re-reading them changes.

``Sources`` holds the values given on the command line or in the environment and the
config file's path; ``Sources.load()`` reads the file again and lays the given values
over it, so SIGHUP re-reads the file and a flag still overrides it. The file is TOML with
one top-level key per row of ``SETTINGS``; any other key, a wrong type or a value out of
range is a ``ConfigError`` of one line naming the key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from portway.dataplane.settings import DataPlaneSettings
from portway.errors import ConfigError
from portway.runtime.config import ServeConfig
from portway.runtime.settings import BY_KEY, SETTINGS, Setting, Value

_EXPECTED = {str: "a string", int: "an integer", float: "a number", tuple: "a list of strings"}


def read_file(path: Path) -> dict[str, Value]:
    """The checked values of a config file, by key."""
    where = f"config {path}"
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line N, column M)"
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    values = {}
    for key, value in data.items():
        setting = BY_KEY.get(key)
        if setting is None:
            raise ConfigError(f"{where}: unknown key {key!r}", field=key)
        values[key] = check(setting, value, f"{where}: key {key!r}")
    return values


def check(setting: Setting, value: Any, label: str) -> Value:
    """``value`` as the setting's kind, or a ConfigError naming the expected type."""
    kind = setting.kind
    # bool is an int in Python, never in TOML; a float setting takes an integer too.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if kind is str and isinstance(value, str):
        return value
    if kind is int and number and isinstance(value, int):
        return _bounded(setting, value, label)
    if kind is float and number:
        return _bounded(setting, float(value), label)
    raise ConfigError(
        f"{label}: expected {_EXPECTED[kind]}, got {_toml_type(value)}", field=setting.key
    )


def _bounded(setting: Setting, value: int | float, label: str) -> int | float:
    if setting.low is not None and value < setting.low:
        raise ConfigError(f"{label}: must be at least {setting.low:g}, got {value}")
    if setting.high is not None and value > setting.high:
        raise ConfigError(f"{label}: must be at most {setting.high:g}, got {value}")
    return value


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", int: "an integer", float: "a number"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), "a date or time")


@dataclass(frozen=True, kw_only=True, slots=True)
class Sources:
    """What a node's settings are made from; kept for SIGHUP."""

    given: Mapping[str, Value] = field(default_factory=dict)  # command line or environment
    labels: Mapping[str, str] = field(default_factory=dict)  # key → the flag/variable used
    path: Path | None = None  # the config file
    admin_token: str | None = None

    def values(self) -> tuple[dict[str, Value], dict[str, str]]:
        """Every key's value (given > file > default) and the label its errors carry."""
        file = read_file(self.path) if self.path is not None else {}
        values = {s.key: s.default for s in SETTINGS} | file | dict(self.given)
        labels = {s.key: s.flag for s in SETTINGS}
        labels |= {key: f"config {self.path}: key {key!r}" for key in file}
        return values, labels | dict(self.labels)

    def load(self) -> ServeConfig:
        values, labels = self.values()
        return build(values, labels, admin_token=self.admin_token)


def build(
    values: Mapping[str, Value], labels: Mapping[str, str], *, admin_token: str | None = None
) -> ServeConfig:
    serve: dict[str, Any] = {}
    plane: dict[str, Any] = {}
    for s in SETTINGS:
        value = s.convert(values[s.key], flag=labels.get(s.key, s.flag))
        (plane if s.dataplane else serve)[s.target] = value
    return ServeConfig(**serve, dataplane=DataPlaneSettings(**plane), admin_token=admin_token)


def value_of(config: ServeConfig, setting: Setting) -> Any:
    return getattr(config.dataplane if setting.dataplane else config, setting.target)


def changed(old: ServeConfig, new: ServeConfig) -> list[Setting]:
    return [s for s in SETTINGS if value_of(old, s) != value_of(new, s)]


def take_live(running: ServeConfig, fresh: ServeConfig) -> ServeConfig:
    """``running`` with the live settings of ``fresh``: what a running node switches to."""
    live = [s for s in SETTINGS if s.live]
    serve = {s.target: value_of(fresh, s) for s in live if not s.dataplane}
    plane = {s.target: value_of(fresh, s) for s in live if s.dataplane}
    return replace(running, **serve, dataplane=replace(running.dataplane, **plane))


def dump(values: Mapping[str, Value]) -> str:
    """A complete config file holding ``values``, each key with its help as a comment."""
    lines = ["# portway serve --config FILE: every key (see docs/running.md)"]
    for s in SETTINGS:
        lines.append(f"\n# {s.help} [{'live' if s.live else 'restart'}]")
        lines.append(f"{s.key} = {_toml(values[s.key])}")
    return "\n".join(lines) + "\n"


def _toml(value: Value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    if isinstance(value, str):  # a JSON string is a TOML basic string
        return json.dumps(value)
    return repr(value)
