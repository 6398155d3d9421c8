"""``portway keys``: the secret keys that seal tenants' private keys in the store.

Unlike the other client commands these work on the key file and the store directly, not
through the API: run them on a node, as the user Portway runs as, with the same
``--data-dir``/``--store``/``--secret-key-file`` (or environment) as ``portway serve``.
docs/security.md ("Secrets at rest") gives the rotation steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from portway.errors import PortwayError
from portway.runtime.config import default_secret_key_file, sqlite_url
from portway.store import Store, open_store, sealing
from portway.store.keyfile import FileKeyring


def _file_options(func: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("var/portway"),
            show_default=True,
            envvar="PORTWAY_DATA_DIR",
            help="The node's data dir (as for portway serve).",
        ),
        click.option(
            "--secret-key-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            envvar="PORTWAY_SECRET_KEY_FILE",
            help="The key file (default: DATA_DIR/secret.key).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    store = click.option(
        "--store",
        "store_url",
        default=None,
        envvar="PORTWAY_STORE",
        help="The store's URL (default: SQLite in the data dir).",
    )
    return _file_options(store(func))


def _key_file(data_dir: Path, secret_key_file: Path | None) -> Path:
    return secret_key_file or default_secret_key_file(data_dir)


@contextlib.contextmanager
def _failures_as_one_line() -> Iterator[None]:
    try:
        yield
    except PortwayError as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _opened(data_dir: Path, store_url: str | None, key_file: Path) -> Iterator[Store]:
    keys = FileKeyring(key_file)
    keys.load()  # a missing, open or malformed key file is reported before anything else
    if store_url is None and not (data_dir / "portway.db").exists():
        raise click.ClickException(f"no store in {data_dir} (give --data-dir or --store)")
    store = open_store(store_url or sqlite_url(data_dir), keys)
    try:
        yield store
    finally:
        store.close()


@click.group("keys")
def keys() -> None:
    """The secret keys that encrypt tenants' private keys in the store."""


@keys.command("add")
@_file_options
def add(data_dir: Path, secret_key_file: Path | None) -> None:
    """Add a new key that opens but does not seal yet (makes the file if missing)."""
    path = _key_file(data_dir, secret_key_file)
    with _failures_as_one_line():
        key = sealing.add_key(path)
    click.echo(f"added key {key.kid} to {path}")


@keys.command("rotate")
@_store_options
@click.option("--to", "to", metavar="KID", help="Make this key of the file current.")
def rotate(
    data_dir: Path, store_url: str | None, secret_key_file: Path | None, to: str | None
) -> None:
    """Make a new key (or --to KID) current and seal every certificate key with it."""
    path = _key_file(data_dir, secret_key_file)
    with _failures_as_one_line(), _opened(data_dir, store_url, path) as store:
        key, count = sealing.rotate(store, path, to)
    click.echo(f"key {key.kid} now seals; sealed {count} certificate keys with it")
    click.echo(f"the older keys stay in {path} until 'portway keys prune'")


@keys.command("prune")
@_store_options
def prune(data_dir: Path, store_url: str | None, secret_key_file: Path | None) -> None:
    """Remove the keys that no longer seal any certificate key (never the current one)."""
    path = _key_file(data_dir, secret_key_file)
    with _failures_as_one_line(), _opened(data_dir, store_url, path) as store:
        dropped = sealing.prune(store, path)
    click.echo(f"removed {', '.join(dropped)} from {path}" if dropped else "nothing to remove")


@keys.command("list")
@_store_options
def list_keys(data_dir: Path, store_url: str | None, secret_key_file: Path | None) -> None:
    """The keys in the file and in the store, and how many certificate keys each seals."""
    path = _key_file(data_dir, secret_key_file)
    with _failures_as_one_line(), _opened(data_dir, store_url, path) as store:
        uses = sealing.usage(store, path)
    for use in uses:
        role = "current" if use.current else "opens" if use.in_file else "MISSING from file"
        kid = use.kid or "(plain text)"
        click.echo(f"{kid:16}  {role:17}  {use.certificates} certificates")
