"""``portway zone``: create, list and delete DNS zones (admin writes)."""

from __future__ import annotations

import click

from portway.cli.client import JSONObject, segment, unwrap, unwrap_list
from portway.cli.options import Settings, client_command
from portway.cli.output import ZONE_COLUMNS, emit


@click.group("zone")
def zone() -> None:
    """Zones hostnames are claimed under: a project's own, or shared by all."""


@zone.command("create")
@click.argument("name")
@click.option("--owner", "owner", metavar="PROJECT", help="The project that owns the zone.")
@click.option("--shared", is_flag=True, help="Every project may claim names in it.")
@click.option(
    "--shared-host", is_flag=True, help="One hostname every project routes by path prefix."
)
@click.option("--default", "default", is_flag=True, help="Offered first to tenants.")
@click.option("--deprecated", is_flag=True, help="Still served; tenants should move away.")
@client_command
def create(
    name: str,
    owner: str | None,
    shared: bool,
    shared_host: bool,
    default: bool,
    deprecated: bool,
    *,
    settings: Settings,
) -> None:
    """Create the zone NAME (needs an admin token): --owner PROJECT or --shared."""
    body: JSONObject = {
        "name": name,
        "shared": shared,
        "shared_host": shared_host,
        "default": default,
        "deprecated": deprecated,
    }
    if owner is not None:
        body["project"] = owner
    with settings.client() as api:
        reply = api.post("/v1/zones", {"zone": body})
    emit(unwrap(reply, "zone"), settings.fmt)


@zone.command("list")
@client_command
def list_(*, settings: Settings) -> None:
    """List the zones the token may use (all of them for an admin)."""
    with settings.client() as api:
        reply = api.get("/v1/zones")
    emit(unwrap_list(reply, "zones"), settings.fmt, columns=ZONE_COLUMNS)


@zone.command("delete")
@click.argument("name")
@client_command
def delete(name: str, *, settings: Settings) -> None:
    """Delete the zone NAME (needs an admin token)."""
    with settings.client() as api:
        api.delete(f"/v1/zones/{segment(name)}")
    if settings.fmt == "table":
        click.echo(f"deleted zone {name}")
