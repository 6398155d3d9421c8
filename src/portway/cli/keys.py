"""``portway keys``: the secret keys that seal tenants' private keys in the store.

Unlike the other client commands these work on the key file and the store directly, not
through the API: run them on a node, as the user Portway runs as, with the same
``--config``, ``--data-dir``, ``--store`` and ``--secret-key-file`` (or environment
variables) as ``portway serve``. docs/security.md ("Secrets at rest") gives the rotation steps.
"""

from __future__ import annotations

from pathlib import Path

import click

from portway.cli.node import failures_as_one_line, node_config, opened_store, where_options
from portway.store import sealing


@click.group("keys")
def keys() -> None:
    """The secret keys that encrypt tenants' private keys in the store."""


@keys.command("add")
@where_options
def add(config_file: Path | None, **where: str | None) -> None:
    """Add a new key that opens but does not seal yet (makes the file if missing)."""
    with failures_as_one_line():
        path = node_config(config_file, where).secret_key_path
        key = sealing.add_key(path)
    click.echo(f"added key {key.kid} to {path}")


@keys.command("rotate")
@where_options
@click.option("--to", "to", metavar="KID", help="Make this key of the file current.")
def rotate(config_file: Path | None, to: str | None, **where: str | None) -> None:
    """Make a new key (or --to KID) current and seal every certificate key with it."""
    with failures_as_one_line():
        config = node_config(config_file, where)
        with opened_store(config) as store:
            key, count = sealing.rotate(store, config.secret_key_path, to)
    click.echo(f"key {key.kid} now seals; sealed {count} certificate keys with it")
    click.echo(f"the older keys stay in {config.secret_key_path} until 'portway keys prune'")


@keys.command("prune")
@where_options
def prune(config_file: Path | None, **where: str | None) -> None:
    """Remove the keys that no longer seal any certificate key (never the current one)."""
    with failures_as_one_line():
        config = node_config(config_file, where)
        with opened_store(config) as store:
            dropped = sealing.prune(store, config.secret_key_path)
    path = config.secret_key_path
    click.echo(f"removed {', '.join(dropped)} from {path}" if dropped else "nothing to remove")


@keys.command("list")
@where_options
def list_keys(config_file: Path | None, **where: str | None) -> None:
    """The keys in the file and in the store, and how many certificate keys each seals."""
    with failures_as_one_line():
        config = node_config(config_file, where)
        with opened_store(config) as store:
            uses = sealing.usage(store, config.secret_key_path)
    for use in uses:
        role = "current" if use.current else "opens" if use.in_file else "MISSING from file"
        kid = use.kid or "(plain text)"
        click.echo(f"{kid:16}  {role:17}  {use.certificates} certificates")
