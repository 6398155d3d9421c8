"""``POST /v1/dns/check`` (admin): the DNS records of the served hostnames, checked.

Body ``{"check": {"prune": false}}`` (``{}`` for the default); the answer lists what the check
created, repaired and removed, and what it left wrong: stray names of Portway's and
served hostnames that another party's records hold (``ok`` is false while any remain).
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from portway.api.endpoint import Call, Handler
from portway.api.openapi import Operation
from portway.api.schemas import StrictIn, envelope
from portway.dns.seam import CheckReport
from portway.service import Service

PATH = "/v1/dns/check"


class DnsCheckIn(StrictIn):
    prune: bool = Field(False, description="also remove stray names of Portway's")


class DnsCheckRequest(StrictIn):
    check: DnsCheckIn = Field(default_factory=DnsCheckIn)


class DnsConflictOut(BaseModel):
    name: str
    records: str


class DnsCheckOut(BaseModel):
    managed: bool = Field(description="false: this node keeps no DNS records")
    ok: bool = Field(description="nothing is left wrong")
    created: list[str]
    repaired: list[str]
    stray: list[str]
    removed: list[str]
    conflicts: list[DnsConflictOut]


def check_out(report: CheckReport) -> DnsCheckOut:
    return DnsCheckOut(
        managed=report.managed,
        ok=not report.unfixed,
        created=list(report.created),
        repaired=list(report.repaired),
        stray=list(report.stray),
        removed=list(report.removed),
        conflicts=[DnsConflictOut(name=n, records=r) for n, r in report.conflicts],
    )


class DnsHandlers:
    def __init__(self, service: Service) -> None:
        self.service = service

    def check(self, call: Call) -> Response:
        wanted = call.parse(DnsCheckRequest).check
        report = self.service.check_dns(call.actor, prune=wanted.prune)
        return JSONResponse({"check": check_out(report).model_dump()})


def dns_table(service: Service) -> list[tuple[str, list[tuple[Operation, Handler]]]]:
    """The DNS routes, in the shape of the app's route table."""
    handlers = DnsHandlers(service)
    summary = "check the served hostnames' DNS records; re-create missing ones (admin)"
    op = Operation("POST", summary, DnsCheckRequest, response=envelope("check", DnsCheckOut))
    return [(PATH, [(op, handlers.check)])]
