"""``portway node list``: the tier's nodes as each last reported itself (admin)."""

from __future__ import annotations

import click

from portway.cli.client import unwrap_list
from portway.cli.options import Settings, client_command
from portway.cli.output import NODE_COLUMNS, emit


@click.group("node")
def node() -> None:
    """The Portway nodes that share this store."""


@node.command("list")
@client_command
def list_(*, settings: Settings) -> None:
    """Each node's addresses, version, applied revision and digest, and whether it is
    lost (silent for three report intervals). Nodes in step show the same digest."""
    with settings.client() as api:
        reply = api.get("/v1/nodes")
    emit(unwrap_list(reply, "nodes"), settings.fmt, columns=NODE_COLUMNS)
