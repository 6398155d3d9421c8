"""Certificates in snapshots: loaded when a proxy attaches one, dropped when none does,
and the mapping object kept while nothing about certificates changed."""

from __future__ import annotations

import dataclasses

import trustme
from tests.reconciler.seed import admin

from portway.model import Proxy, TlsSettings
from portway.reconciler.reconciler import Reconciler
from portway.service import Actor, Service
from portway.store import Store


def _setup(store: Store) -> tuple[Service, Actor, str]:
    service = Service(store)
    actor = admin(service)
    leaf = trustme.CA().issue_cert("*.alpha.test")
    chain = "".join(b.bytes().decode() for b in leaf.cert_chain_pems)
    cert = service.create_certificate(
        actor, "alpha", name="w", chain=chain, key=leaf.private_key_pem.bytes().decode()
    )
    return service, actor, cert.id


def test_attached_certificate_reaches_the_snapshot_and_leaves_with_it(store: Store) -> None:
    service, actor, cert_id = _setup(store)
    rec = Reconciler(store, lambda snap, changed: None)
    assert rec.build_initial().certificates == {}
    plain = service.create_proxy(
        actor, "alpha", Proxy(id="", project="", hostname="plain.alpha.test")
    )
    tls = TlsSettings(certificate=cert_id, hsts=True)
    secure = service.create_proxy(
        actor, "alpha", Proxy(id="", project="", hostname="a.alpha.test", tls=tls)
    )
    snap = rec.step()
    assert snap is not None and set(snap.certificates) == {cert_id}
    cert = snap.certificates[cert_id]
    assert "PRIVATE KEY" in cert.key_pem and cert.names == ("*.alpha.test",)

    service.update_proxy(actor, "alpha", plain.id, {"backend_port": 81})
    unchanged = rec.step()
    assert unchanged is not None and unchanged.certificates is snap.certificates

    service.update_proxy(actor, "alpha", secure.id, {"tls": TlsSettings()})
    detached = rec.step()
    assert detached is not None and detached.certificates == {}


def test_initial_snapshot_loads_attached_certificates(store: Store) -> None:
    service, actor, cert_id = _setup(store)
    tls = TlsSettings(certificate=cert_id)
    draft = Proxy(id="", project="", hostname="b.alpha.test", tls=tls)
    service.create_proxy(actor, "alpha", dataclasses.replace(draft))
    snap = Reconciler(store, lambda snap, changed: None).build_initial()
    assert set(snap.certificates) == {cert_id}
