"""Options shared by the client commands, and the ADDR[:PORT] parameter type.

``--url``, ``--token``, ``--project`` and ``--format`` are accepted both on ``portway``
itself and on every client command (``portway -p alpha proxy list`` and
``portway proxy list -p alpha`` both work). A value on the command wins over one on the
group, which wins over the environment (``PORTWAY_URL``, ``PORTWAY_TOKEN``,
``PORTWAY_PROJECT``, ``PORTWAY_FORMAT``), which wins over the default.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
import httpx

from portway.cli.client import DEFAULT_URL, ApiClient
from portway.cli.output import FORMATS

_SETTINGS = ("url", "token", "project", "fmt")
_ENV = {
    "url": "PORTWAY_URL",
    "token": "PORTWAY_TOKEN",
    "project": "PORTWAY_PROJECT",
    "fmt": "PORTWAY_FORMAT",
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where and as whom to call the API, and how to print the answer."""

    url: str
    token: str | None
    project: str | None
    fmt: str

    def client(self) -> ApiClient:
        return ApiClient(self.url, self.token)

    def need_project(self) -> str:
        if not self.project:
            raise click.UsageError("no project given: pass --project/-p or set PORTWAY_PROJECT")
        return self.project


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --url/--token/--project/--format (all optional, defaulting to None)."""
    decorators = [
        click.option("--url", help=f"API base URL [env PORTWAY_URL; default {DEFAULT_URL}]"),
        click.option("--token", help="API token [env PORTWAY_TOKEN]"),
        click.option("-p", "--project", help="Project name [env PORTWAY_PROJECT]"),
        click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            help="Output format [env PORTWAY_FORMAT; default table]",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def client_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the common options; it receives them merged as ``settings``."""

    @common_options
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _SETTINGS}
        return func(*args, settings=resolve(given), **kwargs)

    return wrapper


def resolve(given: dict[str, str | None]) -> Settings:
    """Merge command-level, group-level, environment and default values."""
    ctx = click.get_current_context(silent=True)
    group: dict[str, str | None] = {}
    if ctx is not None:
        group = ctx.find_root().meta.get("portway.settings", {})

    def pick(name: str) -> str | None:
        return given.get(name) or group.get(name) or os.environ.get(_ENV[name]) or None

    fmt = pick("fmt") or "table"
    if fmt not in FORMATS:
        raise click.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="-f")
    return Settings(
        url=check_url(pick("url") or DEFAULT_URL),
        token=pick("token"),
        project=pick("project"),
        fmt=fmt,
    )


def check_url(url: str) -> str:
    """Refuse, as a usage error, an API URL that httpx could not even try."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise click.BadParameter(f"{url!r}: {exc}", param_hint="--url") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise click.BadParameter(
            f"{url!r} is not an http:// or https:// URL", param_hint="--url"
        ) from None
    return url


@dataclass(frozen=True)
class Address:
    """A backend given on the command line; ``port`` is None when the proxy's default applies."""

    address: str
    port: int | None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"address": self.address}
        if self.port is not None:
            body["port"] = self.port
        return body


class AddressType(click.ParamType[Address, Any]):
    """ADDR[:PORT], with IPv6 written as [::1]:8080 (or bare ::1 without a port)."""

    name = "ADDR[:PORT]"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Address:
        if isinstance(value, Address):
            return value
        try:
            return parse_address(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def parse_address(text: str) -> Address:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not ADDR[:PORT]")
        return Address(host, _port(rest[1:], text) if rest else None)
    if text.count(":") > 1:  # bare IPv6, no port
        return Address(text, None)
    host, sep, port = text.partition(":")
    if not host:
        raise ValueError(f"{text!r} has no address")
    return Address(host, _port(port, text) if sep else None)


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{whole!r}: port must be a number from 1 to 65535")
    return int(text)


ADDRESS = AddressType()
