"""``portway token``: create API tokens for a project."""

from __future__ import annotations

import click

from portway.cli.client import segment, unwrap
from portway.cli.options import Settings, client_command
from portway.cli.output import emit

ROLES = ("member", "reader", "admin")


@click.group("token")
def token() -> None:
    """Create API tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@click.option("--description", help="Free text to tell tokens apart later.")
@client_command
def create(role: str, description: str | None, *, settings: Settings) -> None:
    """Create a token in the project; its secret is printed this once only."""
    project = settings.need_project()
    body: dict[str, str] = {"role": role}
    if description is not None:
        body["description"] = description
    with settings.client() as api:
        reply = api.post(f"/v1/{segment(project)}/tokens", {"token": body})
    emit(unwrap(reply, "token"), settings.fmt)
    if settings.fmt == "table":
        click.echo("portway: store the secret now; it cannot be shown again.", err=True)
