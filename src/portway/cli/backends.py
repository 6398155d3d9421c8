"""``portway backend``: add, list and remove a proxy's backends."""

from __future__ import annotations

from typing import Any

import click

from portway.cli.client import ApiClient, JSONObject, segment, unwrap, unwrap_list
from portway.cli.options import ADDRESS, Address, Settings, client_command
from portway.cli.output import BACKEND_COLUMNS, emit
from portway.cli.proxies import endpoint, proxies_path
from portway.errors import NotFoundError, ValidationError


@click.group("backend")
def backend() -> None:
    """Manage the backends of a proxy."""


def backends_path(project: str, proxy: str, backend_id: str | None = None) -> str:
    path = f"{proxies_path(project, proxy)}/backends"
    return path if backend_id is None else f"{path}/{segment(backend_id)}"


@backend.command("add")
@click.argument("proxy")
@click.argument("address", type=ADDRESS)
@click.option("--weight", type=click.IntRange(0), help="Relative weight; 0 drains.")
@click.option("--backup", is_flag=True, default=None, help="Use only when the others are down.")
@click.option("--tls", is_flag=True, default=None, help="Speak TLS (HTTPS) to the backend.")
@client_command
def add(
    proxy: str,
    address: Address,
    weight: int | None,
    backup: bool | None,
    tls: bool | None,
    *,
    settings: Settings,
) -> None:
    """Add ADDRESS (ADDR[:PORT]) as a backend of PROXY."""
    project = settings.need_project()
    body: dict[str, Any] = address.body()
    if weight is not None:
        body["weight"] = weight
    if backup:
        body["backup"] = True
    if tls:
        body["tls"] = True
    with settings.client() as api:
        reply = api.post(backends_path(project, proxy), {"backend": body})
    emit(unwrap(reply, "backend"), settings.fmt)


@backend.command("list")
@click.argument("proxy")
@client_command
def list_(proxy: str, *, settings: Settings) -> None:
    """List the backends of PROXY, with their health."""
    project = settings.need_project()
    with settings.client() as api:
        backends = unwrap_list(api.get(backends_path(project, proxy)), "backends")
    emit(backends, settings.fmt, columns=BACKEND_COLUMNS)


@backend.command("remove")
@click.argument("proxy")
@click.argument("backend")
@client_command
def remove(proxy: str, backend: str, *, settings: Settings) -> None:
    """Remove BACKEND (its id, or ADDR:PORT) from PROXY."""
    project = settings.need_project()
    with settings.client() as api:
        backend_id = find_backend(api, project, proxy, backend)
        api.delete(backends_path(project, proxy, backend_id))
    if settings.fmt == "table":
        click.echo(f"removed backend {backend} from {proxy}")


def find_backend(api: ApiClient, project: str, proxy: str, wanted: str) -> str:
    """The id of the backend named by id, 'addr:port' or a lone address (if unambiguous)."""
    backends = unwrap_list(api.get(backends_path(project, proxy)), "backends")
    for item in backends:
        if str(item.get("id")) == wanted:
            return wanted
    matches = [b for b in backends if wanted in _names(b)]
    if not matches:
        raise NotFoundError(f"proxy {proxy} has no backend {wanted}")
    if len(matches) > 1:
        raise ValidationError(f"{wanted} matches {len(matches)} backends; give ADDR:PORT or an id")
    return str(matches[0].get("id"))


def _names(backend: JSONObject) -> set[str]:
    address = str(backend.get("address"))
    return {address, endpoint(backend), f"{address}:{backend.get('port')}"}
