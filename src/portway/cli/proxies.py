"""``portway proxy``: create, list, show and delete a project's proxies."""

from __future__ import annotations

from typing import Any

import click

from portway.cli.client import JSONObject, segment, unwrap, unwrap_list
from portway.cli.options import ADDRESS, Address, Settings, client_command
from portway.cli.output import PROXY_COLUMNS, emit
from portway.model.proxy import ALGORITHMS, FORWARDED_FOR, PROTOCOLS


@click.group("proxy")
def proxy() -> None:
    """Manage proxies: a hostname (and path prefix) routed to backends."""


def proxies_path(project: str, proxy: str | None = None) -> str:
    path = f"/v1/{segment(project)}/proxies"
    return path if proxy is None else f"{path}/{segment(proxy)}"


@proxy.command("create")
@click.argument("hostname")
@click.option("--path-prefix", help="Route only this path prefix of HOSTNAME (default /).")
@click.option(
    "--backend-port",
    type=click.IntRange(1, 65535),
    help="Port for backends given without one.",
)
@click.option("--algorithm", type=click.Choice(ALGORITHMS), help="Balancing algorithm.")
@click.option(
    "--forwarded-for",
    type=click.Choice(FORWARDED_FOR),
    help="Send the client's address to the backends (inherit: the node's default).",
)
@click.option(
    "--listen-port",
    type=click.IntRange(1, 65535),
    help="Serve on this port of its own (one the operator's --listen-ports allows) "
    "instead of the shared listeners.",
)
@click.option(
    "--protocol",
    type=click.Choice(PROTOCOLS),
    help="What the --listen-port speaks (default http); tcp and tls-passthrough relay bytes.",
)
@click.option(
    "--backend", "backends", type=ADDRESS, multiple=True, help="A backend; may be repeated."
)
@client_command
def create(
    hostname: str,
    path_prefix: str | None,
    backend_port: int | None,
    algorithm: str | None,
    forwarded_for: str | None,
    listen_port: int | None,
    protocol: str | None,
    backends: tuple[Address, ...],
    *,
    settings: Settings,
) -> None:
    """Create a proxy for HOSTNAME."""
    project = settings.need_project()
    body: dict[str, Any] = {"hostname": hostname}
    optional = {
        "path_prefix": path_prefix,
        "backend_port": backend_port,
        "algorithm": algorithm,
        "listen_port": listen_port,
        "protocol": protocol,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if forwarded_for is not None:
        body["privacy"] = {"forwarded_for": forwarded_for}
    if backends:
        body["backends"] = [b.body() for b in backends]
    with settings.client() as api:
        reply = api.post(proxies_path(project), {"proxy": body})
    emit(unwrap(reply, "proxy"), settings.fmt)


@proxy.command("list")
@client_command
def list_(*, settings: Settings) -> None:
    """List the project's proxies."""
    project = settings.need_project()
    with settings.client() as api:
        proxies = unwrap_list(api.get(proxies_path(project)), "proxies")
    if settings.fmt == "table":
        proxies = [summarize(p) for p in proxies]
    emit(proxies, settings.fmt, columns=PROXY_COLUMNS)


@proxy.command("show")
@click.argument("proxy")
@client_command
def show(proxy: str, *, settings: Settings) -> None:
    """Show PROXY (its id or hostname) with its backends."""
    project = settings.need_project()
    with settings.client() as api:
        reply = api.get(proxies_path(project, proxy))
    emit(unwrap(reply, "proxy"), settings.fmt)


@proxy.command("purge")
@click.argument("proxy")
@click.option("--uri", "urls", multiple=True, help="https://host/path?q or /path?q; repeatable.")
@click.option("--prefix", "prefixes", multiple=True, help="A path prefix; repeatable.")
@click.option("--key", "keys", multiple=True, help="A surrogate key (Surrogate-Key, Cache-Tag).")
@client_command
def purge(
    proxy: str,
    urls: tuple[str, ...],
    prefixes: tuple[str, ...],
    keys: tuple[str, ...],
    *,
    settings: Settings,
) -> None:
    """Drop cached responses of PROXY on every worker (docs/caching.md)."""
    project = settings.need_project()
    body = {"urls": list(urls), "prefixes": list(prefixes), "keys": list(keys)}
    with settings.client() as api:
        reply = api.post(f"{proxies_path(project, proxy)}/purge", {"purge": body})
    result = unwrap(reply, "purge")
    if settings.fmt == "table":
        click.echo(f"purged {result.get('purged', 0)} entries")
    else:
        emit(result, settings.fmt)


@proxy.command("delete")
@click.argument("proxy")
@client_command
def delete(proxy: str, *, settings: Settings) -> None:
    """Delete PROXY (its id or hostname)."""
    project = settings.need_project()
    with settings.client() as api:
        api.delete(proxies_path(project, proxy))
    if settings.fmt == "table":
        click.echo(f"deleted proxy {proxy}")


def summarize(proxy: JSONObject) -> JSONObject:
    """A proxy for one table row: its listener as 'shared' or 'PORT/PROTOCOL', its
    backends as a short 'addr:port' list."""
    port = proxy.get("listen_port")
    listener = "shared" if port is None else f"{port}/{proxy.get('protocol', 'http')}"
    backends = proxy.get("backends")
    if not isinstance(backends, list):
        return {**proxy, "listener": listener}
    shown = " ".join(endpoint(b) for b in backends if isinstance(b, dict))
    return {**proxy, "listener": listener, "backends": shown}


def endpoint(backend: JSONObject) -> str:
    """'10.0.0.5:8080', or '[::1]:8080' for IPv6."""
    address = str(backend.get("address", "?"))
    if ":" in address:
        address = f"[{address}]"
    port = backend.get("port")
    return address if port is None else f"{address}:{port}"
