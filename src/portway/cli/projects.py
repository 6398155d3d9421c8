"""``portway project``: create and list projects (admin)."""

from __future__ import annotations

import click

from portway.cli.client import unwrap, unwrap_list
from portway.cli.options import Settings, client_command
from portway.cli.output import PROJECT_COLUMNS, emit


@click.group("project")
def project() -> None:
    """Create and list projects (needs an admin token)."""


@project.command("create")
@click.argument("name")
@client_command
def create(name: str, *, settings: Settings) -> None:
    """Create the project NAME."""
    with settings.client() as api:
        reply = api.post("/v1/projects", {"project": {"name": name}})
    emit(unwrap(reply, "project"), settings.fmt)


@project.command("list")
@client_command
def list_(*, settings: Settings) -> None:
    """List all projects."""
    with settings.client() as api:
        reply = api.get("/v1/projects")
    emit(unwrap_list(reply, "projects"), settings.fmt, columns=PROJECT_COLUMNS)
