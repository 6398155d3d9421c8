"""v1 handlers for tenant certificates; the private key goes in and never comes out."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from portway.api import schemas
from portway.api.endpoint import Call
from portway.model import Certificate
from portway.service import Service


def certificate_out(cert: Certificate) -> dict[str, Any]:
    fields = cert.public()
    return schemas.CertificateOut.model_validate(fields).model_dump(mode="json")


class CertificateHandlers:
    def __init__(self, service: Service) -> None:
        self.service = service

    def create(self, call: Call) -> Response:
        body = call.parse(schemas.CertificateRequest).certificate
        cert = self.service.create_certificate(
            call.actor, call.params["project"], name=body.name, chain=body.chain, key=body.key
        )
        return JSONResponse({"certificate": certificate_out(cert)}, status_code=201)

    def list(self, call: Call) -> Response:
        certs = self.service.list_certificates(call.actor, call.params["project"])
        return JSONResponse({"certificates": [certificate_out(c) for c in certs]})

    def show(self, call: Call) -> Response:
        p = call.params
        cert = self.service.get_certificate(call.actor, p["project"], p["certificate"])
        return JSONResponse({"certificate": certificate_out(cert)})

    def delete(self, call: Call) -> Response:
        p = call.params
        self.service.delete_certificate(call.actor, p["project"], p["certificate"])
        return Response(status_code=204)
