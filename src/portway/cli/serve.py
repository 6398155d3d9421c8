"""Placeholder for ``portway serve``; the real command is written separately."""

from __future__ import annotations

import click


@click.command("serve")
def serve() -> None:
    """Run the Portway control process and data plane (not implemented yet)."""
    raise click.ClickException("not implemented")
