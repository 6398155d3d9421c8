"""The ``portway`` command: ``serve`` plus client commands that call the REST API.

Layout: ``shell`` turns failures into one line, ``options`` merges --url/--token/
--project/--format with the environment, ``client`` speaks HTTP, ``output`` renders, and
one module per topic holds its commands.
"""

from __future__ import annotations

import click

from portway.cli import (
    backends,
    dns,
    importer,
    keys,
    nodes,
    projects,
    proxies,
    quotas,
    tokens,
    zones,
)
from portway.cli.options import common_options
from portway.cli.serve import serve
from portway.cli.shell import PortwayGroup


@click.group("portway", cls=PortwayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.pass_context
def main(
    ctx: click.Context, url: str | None, token: str | None, project: str | None, fmt: str | None
) -> None:
    """Portway: one proxy tier for the many small web services of a shared cloud.

    Client commands read PORTWAY_URL (default http://127.0.0.1:5668), PORTWAY_TOKEN and
    PORTWAY_PROJECT; the options of the same names override them.
    """
    ctx.meta["portway.settings"] = {"url": url, "token": token, "project": project, "fmt": fmt}


main.add_command(serve)
for group in (
    projects.project,
    quotas.quota,
    tokens.token,
    zones.zone,
    nodes.node,
    proxies.proxy,
    backends.backend,
    keys.keys,
    dns.dns,
    importer.import_,
):
    main.add_command(group)
