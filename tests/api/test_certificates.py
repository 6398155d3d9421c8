"""Certificates over HTTP: upload, list, show, delete, attaching to proxies; both dialects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import trustme
from tests.api.conftest import Api, assert_error


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def pems(cert: trustme.LeafCert) -> tuple[str, str]:
    chain = "".join(b.bytes().decode() for b in cert.cert_chain_pems)
    return chain, cert.private_key_pem.bytes().decode()


def _upload(api: Api, ca: trustme.CA, *names: str, headers: dict[str, str] | None = None) -> Any:
    chain, key = pems(ca.issue_cert(*names))
    body = {"certificate": {"name": "main", "chain": chain, "key": key}}
    return api.client.post("/v1/alpha/certificates", json=body, headers=headers or api.member)


def _proxy(api: Api, hostname: str, tls: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"hostname": hostname}
    if tls is not None:
        body["tls"] = tls
    return api.client.post("/v1/alpha/proxies", json={"proxy": body}, headers=api.member)


def test_upload_returns_facts_and_never_the_key(api: Api, ca: trustme.CA) -> None:
    response = _upload(api, ca, "*.alpha.example.org", "alpha.example.org")
    assert response.status_code == 201, response.text
    cert = response.json()["certificate"]
    assert set(cert) == {"id", "project", "name", "names", "not_after", "fingerprint", "created_at"}
    assert cert["names"] == ["*.alpha.example.org", "alpha.example.org"]
    assert cert["project"] == "alpha" and len(cert["fingerprint"]) == 64
    assert dt.datetime.fromisoformat(cert["not_after"]) > dt.datetime.now(dt.UTC)
    for path in ("/v1/alpha/certificates", f"/v1/alpha/certificates/{cert['id']}"):
        shown = api.client.get(path, headers=api.reader)
        assert shown.status_code == 200 and "PRIVATE KEY" not in shown.text
    listed = api.client.get("/v1/alpha/certificates", headers=api.reader).json()
    assert [c["id"] for c in listed["certificates"]] == [cert["id"]]
    changes = api.client.get("/v1/alpha/changes", headers=api.reader)
    assert "PRIVATE KEY" not in changes.text
    assert changes.json()["changes"][0]["kind"] == "certificate"


def test_bad_pem_and_mismatched_key_name_the_field(api: Api, ca: trustme.CA) -> None:
    chain, _ = pems(ca.issue_cert("a.example.org"))
    _, other_key = pems(ca.issue_cert("b.example.org"))
    post = api.client.post
    for body, field in (
        ({"name": "x", "chain": "junk", "key": other_key}, "chain"),
        ({"name": "x", "chain": chain, "key": other_key}, "key"),
        ({"name": "", "chain": chain, "key": other_key}, "name"),
    ):
        r = post("/v1/alpha/certificates", json={"certificate": body}, headers=api.member)
        assert_error(r, 422, field)
    r = post("/v1/alpha/certificates", json={"certificate": {"name": "x"}}, headers=api.member)
    assert_error(r, 400, "chain")


def test_expired_certificate_is_refused(api: Api) -> None:
    old = trustme.CA().issue_cert(
        "a.example.org",
        not_before=dt.datetime(2000, 1, 1),
        not_after=dt.datetime(2001, 1, 1),
    )
    chain, key = pems(old)
    body = {"certificate": {"name": "old", "chain": chain, "key": key}}
    r = api.client.post("/v1/alpha/certificates", json=body, headers=api.member)
    assert_error(r, 422, "chain")


def test_other_projects_and_readers_cannot_touch_certificates(api: Api, ca: trustme.CA) -> None:
    cert_id = _upload(api, ca, "a.alpha.example.org").json()["certificate"]["id"]
    assert_error(api.client.get(f"/v1/alpha/certificates/{cert_id}", headers=api.other), 404)
    assert_error(api.client.get(f"/v1/beta/certificates/{cert_id}", headers=api.other), 404)
    assert_error(_upload(api, ca, "a.alpha.example.org", headers=api.reader), 403)
    r = api.client.delete(f"/v1/alpha/certificates/{cert_id}", headers=api.reader)
    assert_error(r, 403)
    assert_error(api.client.get("/v1/alpha/certificates/nope", headers=api.member), 404)


def test_attach_needs_covering_certificate_of_same_project(api: Api, ca: trustme.CA) -> None:
    cert_id = _upload(api, ca, "*.alpha.example.org").json()["certificate"]["id"]
    r = _proxy(api, "wiki.alpha.example.org", {"certificate": cert_id, "hsts": True})
    assert r.status_code == 201, r.text
    assert r.json()["proxy"]["tls"] == {
        "certificate": cert_id,
        "redirect_http": False,
        "hsts": True,
    }
    assert_error(
        _proxy(api, "a.b.alpha.example.org", {"certificate": cert_id}), 422, "tls.certificate"
    )
    assert_error(
        _proxy(api, "x.alpha.example.org", {"certificate": "0" * 32}), 422, "tls.certificate"
    )
    beta_cert = _beta_certificate(api, ca)
    assert_error(
        _proxy(api, "y.alpha.example.org", {"certificate": beta_cert}), 422, "tls.certificate"
    )


def _beta_certificate(api: Api, ca: trustme.CA) -> str:
    chain, key = pems(ca.issue_cert("*.alpha.example.org"))
    body = {"certificate": {"name": "b", "chain": chain, "key": key}}
    r = api.client.post("/v1/beta/certificates", json=body, headers=api.other)
    assert r.status_code == 201, r.text
    return str(r.json()["certificate"]["id"])


def test_patch_attaches_and_hostname_change_is_rechecked(api: Api, ca: trustme.CA) -> None:
    cert_id = _upload(api, ca, "wiki.alpha.example.org").json()["certificate"]["id"]
    pid = _proxy(api, "wiki.alpha.example.org").json()["proxy"]["id"]
    revision = api.client.get(f"/v1/alpha/proxies/{pid}", headers=api.member).json()["proxy"][
        "revision"
    ]
    patch = {"tls": {"certificate": cert_id, "redirect_http": True}}
    r = api.client.patch(f"/v1/alpha/proxies/{pid}", json={"proxy": patch}, headers=api.member)
    assert r.status_code == 200, r.text
    assert r.json()["proxy"]["tls"]["certificate"] == cert_id
    assert r.json()["proxy"]["revision"] > revision
    rename = {"hostname": "other.alpha.example.org"}
    r = api.client.patch(f"/v1/alpha/proxies/{pid}", json={"proxy": rename}, headers=api.member)
    assert_error(r, 422, "tls.certificate")


def test_delete_of_attached_certificate_conflicts(api: Api, ca: trustme.CA) -> None:
    cert_id = _upload(api, ca, "wiki.alpha.example.org").json()["certificate"]["id"]
    pid = _proxy(api, "wiki.alpha.example.org", {"certificate": cert_id}).json()["proxy"]["id"]
    path = f"/v1/alpha/certificates/{cert_id}"
    assert_error(api.client.delete(path, headers=api.member), 409, "certificate")
    detach = {"tls": {"certificate": None}}
    r = api.client.patch(f"/v1/alpha/proxies/{pid}", json={"proxy": detach}, headers=api.member)
    assert r.status_code == 200, r.text
    assert api.client.delete(path, headers=api.member).status_code == 204
    assert_error(api.client.get(path, headers=api.member), 404, "certificate")
    kinds = [
        (c["kind"], c["action"])
        for c in api.client.get("/v1/alpha/changes", headers=api.member).json()["changes"]
    ]
    assert kinds[0] == ("certificate", "delete")


def test_openapi_lists_certificate_routes(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert set(doc["paths"]["/v1/{project}/certificates"]) == {"get", "post"}
    assert "CertificateRequest" in doc["components"]["schemas"]
