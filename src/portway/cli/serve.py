"""``portway serve``: run the control process and the data plane.

Its options are derived from the settings table (runtime/settings.py); click reads the
command line and the environment, and ``Sources`` lays them over the config file.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import uvloop
from click.core import ParameterSource

from portway.errors import ConfigError, PortwayError
from portway.runtime.configfile import Sources, dump
from portway.runtime.settings import SETTINGS, Setting, Value


class SettingError(click.ClickException):
    """A bad setting: a usage error (exit 2), like a bad flag click rejects itself."""

    exit_code = 2


def _bound(value: float | None) -> int | None:
    return None if value is None else int(value)


def _click_type(setting: Setting) -> click.ParamType[Any, Any]:
    if setting.kind is int:
        return click.IntRange(min=_bound(setting.low), max=_bound(setting.high))
    if setting.kind is float:
        return click.FloatRange(min=setting.low, max=setting.high)
    return click.STRING


def setting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per row of SETTINGS; values arrive as keyword arguments named by key."""
    for s in reversed(SETTINGS):
        shown = s.default_text or s.default not in ("", ())
        command = click.option(
            s.flag,
            s.key,
            type=_click_type(s),
            multiple=s.kind is tuple,
            default=s.default,
            show_default=shown,
            envvar=s.envvar,
            metavar=s.metavar or None,
            help=f"{s.help} [{'live' if s.live else 'restart'}]",
        )(command)
    return command


def given(ctx: click.Context, values: dict[str, Value]) -> tuple[dict[str, Value], dict[str, str]]:
    """The values set on the command line or in the environment, and where each came
    from; the rest are click's defaults, which the config file may replace."""
    out: dict[str, Value] = {}
    labels: dict[str, str] = {}
    for s in SETTINGS:
        source = ctx.get_parameter_source(s.key)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            out[s.key] = values[s.key]
            labels[s.key] = s.flag if source is ParameterSource.COMMANDLINE else s.envvar
    return out, labels


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PORTWAY_CONFIG",
    metavar="FILE",
    help="TOML file with any of the settings below (--check-config prints its keys). "
    "Flags and environment variables override it; SIGHUP re-reads it and applies the "
    "settings marked [live].",
)
@click.option(
    "--check-config",
    is_flag=True,
    help="Check the settings, print them all as a config file and exit.",
)
@setting_options
@click.pass_context
def serve(
    ctx: click.Context, /, config_file: Path | None, check_config: bool, **values: Value
) -> None:
    """Run Portway: API, reconciler and data plane."""
    from portway.runtime.control import run

    explicit, labels = given(ctx, values)
    sources = Sources(
        given=explicit,
        labels=labels,
        path=config_file,
        admin_token=os.environ.get("PORTWAY_ADMIN_TOKEN") or None,
    )
    try:
        config = sources.load()
        if check_config:
            click.echo(dump(sources.values()[0]), nl=False)
            return
        logging.basicConfig(
            level=config.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        # Migration chatter is noise on every start; failures still surface as errors.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        code = uvloop.run(run(config, reload=sources.load if config_file else None))
    except ConfigError as exc:
        raise SettingError(exc.message) from None
    except PortwayError as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc.strerror or exc}") from None
    sys.exit(code)
