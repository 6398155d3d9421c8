"""``portway dns check``: the served hostnames' DNS records, checked by the node.

One line per finding, and exit status 1 while something is left wrong (a stray name of
Portway's that was not pruned, a served hostname another party's records hold); what
the check repaired is listed but is not a failure.
"""

from __future__ import annotations

from typing import Any

import click

from portway.cli.client import unwrap
from portway.cli.options import Settings, client_command
from portway.cli.output import emit
from portway.dns.seam import CheckReport

UNFIXED_EXIT = 1


@click.group("dns")
def dns() -> None:
    """The DNS records Portway keeps for the hostnames it serves."""


@dns.command("check")
@click.option("--prune", is_flag=True, help="Also remove Portway's records no proxy serves.")
@client_command
def check(prune: bool, *, settings: Settings) -> int:
    """Re-create missing records, repair wrong ones, list stray and foreign names
    (needs an admin token). Exit status 1 if something is left wrong."""
    with settings.client() as api:
        reply = api.post("/v1/dns/check", {"check": {"prune": prune}})
    body = unwrap(reply, "check")
    if settings.fmt != "table":
        emit(body, settings.fmt)
    else:
        for line in as_report(body).findings() or ["all DNS records in order"]:
            click.echo(line)
    return 0 if body.get("ok") else UNFIXED_EXIT


def as_report(body: dict[str, Any]) -> CheckReport:
    """The API's answer as the check's own report (whose lines are defined there)."""
    return CheckReport(
        created=tuple(body.get("created", ())),
        repaired=tuple(body.get("repaired", ())),
        stray=tuple(body.get("stray", ())),
        removed=tuple(body.get("removed", ())),
        conflicts=tuple((c["name"], c["records"]) for c in body.get("conflicts", ())),
        managed=bool(body.get("managed")),
    )
