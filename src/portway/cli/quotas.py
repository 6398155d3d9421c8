"""``portway quota``: show and set a project's quotas (admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from portway.cli.client import JSONObject, unwrap
from portway.cli.options import Settings, client_command
from portway.cli.output import emit
from portway.model.quota import QUOTA_NAMES

DEFAULT = "default"  # what ``set`` takes to drop a project's own value


@click.group("quota")
def quota() -> None:
    """Show and set a project's quotas (needs an admin token)."""


def _path(project: str) -> str:
    return f"/v1/quotas/{project}"


def _emit(reply: JSONObject, fmt: str) -> None:
    found = unwrap(reply, "quota")
    if fmt != "table":
        emit(found, fmt)
        return
    limits, own, used = found.get("limits", {}), found.get("own", {}), found.get("in_use", {})
    rows = [
        {"quota": n, "limit": limits.get(n), "own": own.get(n), "in_use": used.get(n)}
        for n in QUOTA_NAMES
    ]
    emit(rows, fmt, columns=("quota", "limit", "own", "in_use"))


@quota.command("show")
@click.argument("name", metavar="PROJECT")
@client_command
def show(name: str, *, settings: Settings) -> None:
    """Show PROJECT's limits in force, its own quotas and its use (-1: unlimited)."""
    with settings.client() as api:
        reply = api.get(_path(name))
    _emit(reply, settings.fmt)


def _value(text: str) -> int | None:
    if text == DEFAULT:
        return None
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"expected a number, -1 or {DEFAULT!r}, got {text!r}") from None


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    """One option per quota (model/quota.py), e.g. --backends-per-proxy."""
    for name in reversed(QUOTA_NAMES):
        flag = "--" + name.replace("_", "-")
        help = f"limit of {name}: N, -1 (unlimited) or '{DEFAULT}' (the node's)"
        func = click.option(flag, name, metavar="N", help=help)(func)
    return func


@quota.command("set")
@click.argument("name", metavar="PROJECT")
@_options
@client_command
def set_(name: str, *, settings: Settings, **given: str | None) -> None:
    """Set PROJECT's own quotas; those not given keep their value."""
    with settings.client() as api:
        own = dict(unwrap(api.get(_path(name)), "quota").get("own", {}))
        own.update({n: _value(v) for n, v in given.items() if v is not None})
        reply = api.request("PUT", _path(name), {"quota": own})
    _emit(reply, settings.fmt)
