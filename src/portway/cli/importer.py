"""``portway import dynamicproxy``: migrate the old dynamicproxy's mappings.

An operator command like ``portway keys``: it works on the node's store directly (same
``--config``, ``--data-dir``, ``--store``, ``--secret-key-file`` as ``portway serve``,
and the node's backend rules), through the service. One line per mapping; exit 1 if any
mapping failed. docs/dynamicproxy.md ("Migrating from the old dynamicproxy").
"""

from __future__ import annotations

from pathlib import Path

import click
import httpx

from portway.cli.node import failures_as_one_line, node_config, opened_store, where_options
from portway.compat.dynamicproxy_import import (
    Importer,
    OldMapping,
    read_database,
    read_mapping_json,
    summary,
)
from portway.errors import ConfigError
from portway.service import Service


@click.group("import")
def import_() -> None:
    """Import configuration from the systems Portway replaces."""


@import_.command("dynamicproxy")
@where_options
@click.option(
    "--sqlite",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The old dynamicproxy's SQLite database file (read only).",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="Its database as an SQLAlchemy URL (mysql+pymysql://..., postgresql+psycopg://...).",
)
@click.option(
    "--mapping-json",
    metavar="FILE|URL",
    help="A saved GET /mapping answer, or the old API's .../v1/<project>/mapping URL.",
)
@click.option("--project", help="The project the --mapping-json mappings belong to.")
@click.option(
    "--old-token",
    envvar="PORTWAY_OLD_TOKEN",
    help="X-Auth-Token for a --mapping-json URL [env PORTWAY_OLD_TOKEN].",
)
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
def dynamicproxy(
    config_file: Path | None,
    sqlite: Path | None,
    database_url: str | None,
    mapping_json: str | None,
    project: str | None,
    old_token: str | None,
    dry_run: bool,
    **where: str | None,
) -> None:
    """Create (or update) the old dynamicproxy's mappings in Portway."""
    with failures_as_one_line():
        mappings = _read(sqlite, database_url, mapping_json, project, old_token)
        config = node_config(config_file, where)
        with opened_store(config) as store:
            service = Service(
                store,
                backend_policy=config.backend_policy,
                quota_defaults=config.quota_defaults,
            )
            origin = str(sqlite or database_url or mapping_json)
            outcomes = Importer(service, dry_run=dry_run, origin=origin).run(mappings)
    for outcome in outcomes:
        click.echo(outcome.line(dry_run))
    counts = ", ".join(f"{n} {action}" for action, n in sorted(summary(outcomes).items()))
    click.echo(f"{'dry run: ' if dry_run else ''}{len(outcomes)} mappings: {counts or 'none'}")
    if any(o.failed for o in outcomes):
        raise SystemExit(1)


def _read(
    sqlite: Path | None,
    database_url: str | None,
    mapping_json: str | None,
    project: str | None,
    old_token: str | None,
) -> list[OldMapping]:
    given = [x for x in (sqlite, database_url, mapping_json) if x is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --sqlite, --database-url, --mapping-json")
    if sqlite is not None:
        return read_database(f"sqlite:///file:{sqlite.resolve()}?mode=ro&uri=true")
    if database_url is not None:
        return read_database(database_url)
    assert mapping_json is not None
    if not project:
        raise click.UsageError("--mapping-json needs --project (the output does not name it)")
    return read_mapping_json(_fetch(mapping_json, old_token), project)


def _fetch(source: str, token: str | None) -> str:
    """The text of a file, or of the old API's answer at an http(s) URL."""
    if not source.startswith(("http://", "https://")):
        return Path(source).read_text(encoding="utf-8")
    headers = {"X-Auth-Token": token} if token else {}
    try:
        response = httpx.get(source, headers=headers, timeout=30, trust_env=False)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from None
    if response.status_code != 200:
        raise ConfigError(f"{source} answered {response.status_code} {response.reason_phrase}")
    return response.text
