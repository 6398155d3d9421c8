"""``portway keys``: the secret keys that seal tenants' private keys in the store.

Unlike the other client commands these work on the key file and the store directly, not
through the API: run them on a node, as the user Portway runs as, with the same
``--config``, ``--data-dir``, ``--store`` and ``--secret-key-file`` (or environment
variables) as ``portway serve``. docs/security.md ("Secrets at rest") gives the rotation steps.
"""

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
from portway.store import Store, open_store, sealing
from portway.store.keyfile import FileKeyring

# Where the store and the key file are: the same settings (flags, environment variables,
# config-file keys) as portway serve's.
_WHERE = ("data_dir", "store", "secret_key_file")


def _where_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for key in reversed(_WHERE):
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


def _config(config_file: Path | None, where: dict[str, str | None]) -> ServeConfig:
    given: dict[str, Value] = {k: v for k, v in where.items() if v is not None}
    return Sources(given=given, path=config_file).load()


@contextlib.contextmanager
def _failures_as_one_line() -> Iterator[None]:
    try:
        yield
    except PortwayError as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _opened(config: ServeConfig) -> Iterator[Store]:
    keys = FileKeyring(config.secret_key_path)
    keys.load()  # a missing, open or malformed key file is reported before anything else
    if config.store_url is None and not (config.data_dir / "portway.db").exists():
        raise ConfigError(f"no store in {config.data_dir} (give --data-dir or --store)")
    store = open_store(config.database_url, keys)
    try:
        yield store
    finally:
        store.close()


@click.group("keys")
def keys() -> None:
    """The secret keys that encrypt tenants' private keys in the store."""


@keys.command("add")
@_where_options
def add(config_file: Path | None, **where: str | None) -> None:
    """Add a new key that opens but does not seal yet (makes the file if missing)."""
    with _failures_as_one_line():
        path = _config(config_file, where).secret_key_path
        key = sealing.add_key(path)
    click.echo(f"added key {key.kid} to {path}")


@keys.command("rotate")
@_where_options
@click.option("--to", "to", metavar="KID", help="Make this key of the file current.")
def rotate(config_file: Path | None, to: str | None, **where: str | None) -> None:
    """Make a new key (or --to KID) current and seal every certificate key with it."""
    with _failures_as_one_line():
        config = _config(config_file, where)
        with _opened(config) as store:
            key, count = sealing.rotate(store, config.secret_key_path, to)
    click.echo(f"key {key.kid} now seals; sealed {count} certificate keys with it")
    click.echo(f"the older keys stay in {config.secret_key_path} until 'portway keys prune'")


@keys.command("prune")
@_where_options
def prune(config_file: Path | None, **where: str | None) -> None:
    """Remove the keys that no longer seal any certificate key (never the current one)."""
    with _failures_as_one_line():
        config = _config(config_file, where)
        with _opened(config) as store:
            dropped = sealing.prune(store, config.secret_key_path)
    path = config.secret_key_path
    click.echo(f"removed {', '.join(dropped)} from {path}" if dropped else "nothing to remove")


@keys.command("list")
@_where_options
def list_keys(config_file: Path | None, **where: str | None) -> None:
    """The keys in the file and in the store, and how many certificate keys each seals."""
    with _failures_as_one_line():
        config = _config(config_file, where)
        with _opened(config) as store:
            uses = sealing.usage(store, config.secret_key_path)
    for use in uses:
        role = "current" if use.current else "opens" if use.in_file else "MISSING from file"
        kid = use.kid or "(plain text)"
        click.echo(f"{kid:16}  {role:17}  {use.certificates} certificates")
