"""What the operator commands that work on a node's store directly share (``portway
keys``, ``portway import``): the same ``--config``, ``--data-dir``, ``--store`` and
``--secret-key-file`` (and environment variables) as ``portway serve``, the store opened
with the node's key file, and failures as one line."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from portway.errors import ConfigError, PortwayError
from portway.runtime.config import ServeConfig
from portway.runtime.configfile import Sources
from portway.runtime.settings import BY_KEY, Value
from portway.store import Store, open_store
from portway.store.keyfile import FileKeyring

# Where the store and the key file are: the same settings (flags, environment variables,
# config-file keys) as portway serve's.
WHERE = ("data_dir", "store", "secret_key_file")


def where_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--config`` and the WHERE settings, passed as ``config_file`` and keywords."""
    for key in reversed(WHERE):
        s = BY_KEY[key]
        func = click.option(
            s.flag,
            s.key,
            default=None,
            envvar=s.envvar,
            metavar=s.metavar or None,
            help=f"As for portway serve: {s.help}",
        )(func)
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="PORTWAY_CONFIG",
        metavar="FILE",
        help="portway serve's config file, read for the settings below.",
    )(func)


def node_config(config_file: Path | None, where: dict[str, str | None]) -> ServeConfig:
    given: dict[str, Value] = {k: v for k, v in where.items() if v is not None}
    return Sources(given=given, path=config_file).load()


@contextlib.contextmanager
def failures_as_one_line() -> Iterator[None]:
    try:
        yield
    except PortwayError as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def opened_store(config: ServeConfig) -> Iterator[Store]:
    keys = FileKeyring(config.secret_key_path)
    keys.load()  # a missing, open or malformed key file is reported before anything else
    if config.store_url is None and not (config.data_dir / "portway.db").exists():
        raise ConfigError(f"no store in {config.data_dir} (give --data-dir or --store)")
    store = open_store(config.database_url, keys)
    try:
        yield store
    finally:
        store.close()
