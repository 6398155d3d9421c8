"""``portway serve``: run the control process and the data plane."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import uvloop

from portway.cli.tunables import settings_from, tunable_options
from portway.errors import PortwayError
from portway.runtime.config import (
    ServeConfig,
    parse_cidrs,
    parse_listen,
    parse_optional_listen,
    parse_zone,
)


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/portway"),
    show_default=True,
    envvar="PORTWAY_DATA_DIR",
    help="State directory: SQLite database, generated CA and certificates.",
)
@click.option(
    "--http",
    "http_listen",
    default="127.0.0.1:8080",
    show_default=True,
    envvar="PORTWAY_HTTP",
    help="HTTP data-plane listener, HOST:PORT.",
)
@click.option(
    "--https",
    "https_listen",
    default="127.0.0.1:8443",
    show_default=True,
    envvar="PORTWAY_HTTPS",
    help="HTTPS data-plane listener, HOST:PORT; an empty value disables HTTPS.",
)
@click.option(
    "--default-zone",
    default="portway.test",
    show_default=True,
    envvar="PORTWAY_DEFAULT_ZONE",
    help="Zone of the default wildcard certificate made by the local CA on first start.",
)
@click.option(
    "--api",
    "api_listen",
    default="127.0.0.1:5668",
    show_default=True,
    envvar="PORTWAY_API",
    help="REST API listener, HOST:PORT.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0, max=256),
    default=0,
    show_default=True,
    envvar="PORTWAY_WORKERS",
    help="Data-plane worker processes sharing the listeners (0: run it in this process).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    envvar="PORTWAY_STORE",
    help="SQLAlchemy URL of the store; default SQLite in the data dir "
    "(postgresql+psycopg://user@host/db for several nodes).",
)
@click.option(
    "--trusted-proxy",
    "trusted",
    multiple=True,
    envvar="PORTWAY_TRUSTED_PROXIES",
    help="CIDR whose X-Forwarded-*/Forwarded headers are kept and appended to (repeatable).",
)
@click.option(
    "--metrics",
    "metrics_listen",
    default="127.0.0.1:9568",
    show_default=True,
    envvar="PORTWAY_METRICS",
    help="Prometheus /metrics listener, HOST:PORT; an empty value turns it off "
    "(the API's /metrics then still answers admin tokens).",
)
@click.option(
    "--backend-allow",
    "backend_allow",
    multiple=True,
    envvar="PORTWAY_BACKEND_ALLOW",
    help="CIDR backends may use (repeatable); when given, only these. Loopback is refused "
    "unless named, e.g. 127.0.0.0/8.",
)
@click.option(
    "--backend-deny",
    "backend_deny",
    multiple=True,
    envvar="PORTWAY_BACKEND_DENY",
    help="CIDR backends may not use (repeatable); wins over --backend-allow.",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    envvar="PORTWAY_DRAIN_TIMEOUT",
    help="Seconds in-flight requests get to finish after SIGTERM.",
)
@click.option(
    "--access-log",
    default="",
    envvar="PORTWAY_ACCESS_LOG",
    help="Write one JSON line per request to this file ('-': standard output; "
    "default: no access log).",
)
@tunable_options
@click.option("--log-level", default="info", show_default=True, envvar="PORTWAY_LOG_LEVEL")
def serve(
    data_dir: Path,
    http_listen: str,
    https_listen: str,
    default_zone: str,
    api_listen: str,
    workers: int,
    store_url: str | None,
    trusted: tuple[str, ...],
    metrics_listen: str,
    backend_allow: tuple[str, ...],
    backend_deny: tuple[str, ...],
    drain_timeout: float,
    access_log: str,
    log_level: str,
    **tunables: float,
) -> None:
    """Run Portway: API, reconciler and data plane."""
    import os

    from portway.runtime.control import run

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Migration chatter is noise on every start; failures still surface as errors.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        config = ServeConfig(
            data_dir=data_dir,
            http=parse_listen(http_listen, flag="--http"),
            https=parse_optional_listen(https_listen, flag="--https"),
            default_zone=parse_zone(default_zone, flag="--default-zone"),
            api=parse_listen(api_listen, flag="--api"),
            workers=workers,
            store_url=store_url,
            dataplane=settings_from(tunables, parse_cidrs(trusted, flag="--trusted-proxy")),
            access_log=access_log or None,
            drain_timeout=drain_timeout,
            admin_token=os.environ.get("PORTWAY_ADMIN_TOKEN") or None,
            metrics=parse_optional_listen(metrics_listen, flag="--metrics"),
            backend_allow=parse_cidrs(backend_allow, flag="--backend-allow"),
            backend_deny=parse_cidrs(backend_deny, flag="--backend-deny"),
        )
        code = uvloop.run(run(config))
    except PortwayError as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc.strerror or exc}") from None
    sys.exit(code)
