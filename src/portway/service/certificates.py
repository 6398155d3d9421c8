"""Tenant certificates: upload (validated), list, show, delete, and the attach rule.

A certificate belongs to one project. A proxy of that project attaches it through
``tls.certificate``; the certificate's names must cover the proxy's hostname. The key is
stored for the data plane but never leaves through the service's public results or the
change log. A certificate in use by a proxy cannot be deleted (409).
"""

from __future__ import annotations

import dataclasses

from portway.errors import ConflictError, NotFoundError, ValidationError
from portway.model import Certificate, Proxy
from portway.service.auth import Actor, require_read
from portway.service.base import ServiceBase, new_id
from portway.store import Reader
from portway.tls.certs import covers, inspect_certificate

MAX_NAME = 255
MAX_PEM = 64 * 1024  # a long chain is a few KiB; this only stops abuse


def certificate_not_found(ref: str) -> NotFoundError:
    return NotFoundError(f"certificate {ref} not found", field="certificate")


def _pem(value: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be a non-empty PEM string", field=field)
    if len(value) > MAX_PEM:
        raise ValidationError(f"{field} is longer than {MAX_PEM} characters", field=field)
    return value


def _name(value: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ValidationError(f"name must be 1 to {MAX_NAME} characters", field="name")
    return value.strip()


def check_proxy_tls(reader: Reader, proxy: Proxy) -> None:
    """The certificate a proxy attaches exists in its project and covers its hostname."""
    cert_id = proxy.tls.certificate
    if cert_id is None:
        return
    field = "tls.certificate"
    cert = reader.get_certificate(cert_id) if isinstance(cert_id, str) else None
    if cert is None or cert.project != proxy.project:
        raise ValidationError(f"certificate {cert_id} does not exist in this project", field=field)
    if not covers(cert.names, proxy.hostname):
        raise ValidationError(
            f"certificate {cert_id} ({', '.join(cert.names)}) does not cover {proxy.hostname}",
            field=field,
        )


def _users(reader: Reader, cert: Certificate) -> list[Proxy]:
    return [p for p in reader.find_proxies(project=cert.project) if p.tls.certificate == cert.id]


def _get(reader: Reader, project: str, cert_id: str) -> Certificate:
    cert = reader.get_certificate(cert_id)
    if cert is None or cert.project != project:
        raise certificate_not_found(cert_id)
    return cert


class CertificateOps(ServiceBase):
    def create_certificate(
        self, actor: Actor, project: str, *, name: str, chain: str, key: str
    ) -> Certificate:
        """Validate (parses, key matches, valid now) and store a certificate."""
        name = _name(name)
        info = inspect_certificate(_pem(chain, "chain"), _pem(key, "key"))
        cert = Certificate(
            id=new_id(),
            project=project,
            name=name,
            chain_pem=chain,
            key_pem=key,
            names=info.names,
            not_after=info.not_after,
            fingerprint=info.fingerprint,
        )
        with self._write(actor, project) as tx:
            tx.insert_certificate(cert)
            cert = dataclasses.replace(cert, created_at=tx.now)
            tx.record(
                kind="certificate",
                action="create",
                object_id=cert.id,
                project=project,
                after=cert.public(),
            )
        return cert

    def list_certificates(self, actor: Actor, project: str) -> list[Certificate]:
        def query(reader: Reader) -> list[Certificate]:
            require_read(reader, actor, project)
            return reader.list_certificates(project)

        return self._read(query)

    def get_certificate(self, actor: Actor, project: str, cert_id: str) -> Certificate:
        def query(reader: Reader) -> Certificate:
            require_read(reader, actor, project)
            return _get(reader, project, cert_id)

        return self._read(query)

    def delete_certificate(self, actor: Actor, project: str, cert_id: str) -> None:
        """Delete an unused certificate; 409 while a proxy attaches it."""
        with self._write(actor, project) as tx:
            cert = _get(tx, project, cert_id)
            users = _users(tx, cert)
            if users:
                hosts = ", ".join(sorted({p.hostname for p in users}))
                raise ConflictError(
                    f"certificate {cert_id} is attached to proxies for {hosts}",
                    field="certificate",
                )
            tx.delete_certificate(cert_id)
            tx.record(
                kind="certificate",
                action="delete",
                object_id=cert_id,
                project=project,
                before=cert.public(),
            )
