"""Backends spoken to over TLS (``Backend.tls``), over real loopback TLS servers with
trustme certificates: reached, kept apart from plain connections to the same address,
verified only against --upstream-ca-file, and a failed or stalled handshake is a
connect failure (502, a passive outcome), bounded by the connect timeout."""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from portway.dataplane import DataPlaneSettings
from portway.model import Backend
from tests.dataplane import tls_origin
from tests.dataplane.conftest import FAST, Origin, ProxyRunner, proxy_for
from tests.dataplane.test_ejection import Silent

# The TLS origins' fixtures, shared with the nginx tests (tests/drivers/conftest.py).
ca = tls_origin.ca
make_tls_origin = tls_origin.make_tls_origin

HOST = {"Host": "app.example.org"}
PID = "app.example.org/"


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "upstream-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def tls_backend(origin: Origin, **kw: Any) -> Backend:
    return origin.backend(tls=True, **kw)


def get(runner: ProxyRunner, path: str = "/", host: str = "app.example.org") -> httpx.Response:
    url = f"http://127.0.0.1:{runner.port}{path}"
    return httpx.get(url, headers={"Host": host}, timeout=10)


def test_a_tls_backend_is_reached_over_tls(
    make_proxy: Callable[..., ProxyRunner], make_tls_origin: Callable[..., Origin]
) -> None:
    secure = make_tls_origin("secure")
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", tls_backend(secure)))
    response = get(runner, "/x")
    assert response.status_code == 200
    assert response.text == "secure /x 0"
    assert [s.path for s in secure.seen] == ["/x"]


def test_tls_connections_are_kept_alive_and_reused(
    make_proxy: Callable[..., ProxyRunner], make_tls_origin: Callable[..., Origin]
) -> None:
    secure = make_tls_origin("secure")
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", tls_backend(secure)))
    assert [get(runner).status_code for _ in range(4)] == [200] * 4
    assert len(secure.connections) == 1  # one handshake, then the pooled connection


def test_plain_and_tls_backends_serve_side_by_side(
    make_proxy: Callable[..., ProxyRunner],
    make_tls_origin: Callable[..., Origin],
    origin: Origin,
) -> None:
    secure = make_tls_origin("secure")
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", tls_backend(secure), origin.backend()))
    bodies = {get(runner).text for _ in range(4)}
    assert bodies == {"secure / 0", "one / 0"}


def test_a_tls_and_a_plain_connection_to_one_address_never_mix(
    make_proxy: Callable[..., ProxyRunner], make_tls_origin: Callable[..., Origin]
) -> None:
    """The pool keys on TLS too: the plain route to a TLS-only server must not be
    handed the TLS route's pooled connection (it gets the server's refusal instead)."""
    secure = make_tls_origin("secure")
    runner = make_proxy()
    plain = Backend(id="plain", address="127.0.0.1", port=secure.port)
    runner.route(
        proxy_for("app.example.org", tls_backend(secure)),
        proxy_for("plain.example.org", plain),
    )
    assert get(runner).status_code == 200  # a TLS connection now idles in the pool
    assert get(runner, host="plain.example.org").status_code == 502
    assert get(runner).status_code == 200


def test_a_failed_handshake_is_a_connect_failure(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    """TLS to a plain HTTP server: 502, and the passive checks count it like a refused
    connection (the backend is ejected, the good one keeps serving)."""
    plain = make_origin("plain")
    good = make_origin("good")
    runner = make_proxy(DataPlaneSettings())
    runner.route(proxy_for("solo.example.org", plain.backend(tls=True), pid="solo"))
    assert get(runner, host="solo.example.org").status_code == 502
    runner.route(proxy_for("app.example.org", tls_backend(plain), good.backend()))
    assert {get(runner).status_code for _ in range(8)} == {200}  # retried on the good one
    assert runner.on_loop(runner.dp.ejected) == {(PID, "plain")}


def test_a_stalled_handshake_is_bounded_by_the_connect_timeout(
    make_proxy: Callable[..., ProxyRunner],
) -> None:
    silent = Silent()  # accepts, then never says a word: the ClientHello goes unanswered
    try:
        runner = make_proxy(DataPlaneSettings(connect_timeout=0.3))
        backend = Backend(id="silent", address="127.0.0.1", port=silent.port, tls=True)
        runner.route(proxy_for("app.example.org", backend))
        started = time.monotonic()
        assert get(runner).status_code == 502
        assert time.monotonic() - started < 3
    finally:
        silent.close()


def test_without_a_ca_file_any_certificate_is_accepted(
    make_proxy: Callable[..., ProxyRunner], make_tls_origin: Callable[..., Origin]
) -> None:
    stranger = make_tls_origin("stranger", issuer=trustme.CA(), names=("elsewhere.test",))
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", tls_backend(stranger)))
    assert get(runner).status_code == 200  # encrypted, not authenticated (as nginx's default)


def test_with_a_ca_file_the_certificate_is_verified(
    make_proxy: Callable[..., ProxyRunner],
    make_tls_origin: Callable[..., Origin],
    ca_file: Path,
) -> None:
    trusted = make_tls_origin("trusted")
    stranger = make_tls_origin("stranger", issuer=trustme.CA())
    misnamed = make_tls_origin("misnamed", names=("elsewhere.test",))
    runner = make_proxy(_with(FAST, upstream_ca_file=ca_file))
    runner.route(
        proxy_for("app.example.org", tls_backend(trusted)),
        proxy_for("stranger.example.org", tls_backend(stranger)),
        proxy_for("misnamed.example.org", tls_backend(misnamed)),
    )
    assert get(runner).text == "trusted / 0"
    assert get(runner, host="stranger.example.org").status_code == 502
    assert get(runner, host="misnamed.example.org").status_code == 502
    assert stranger.seen == [] and misnamed.seen == []


def test_a_hostname_backend_is_verified_against_its_name_and_gets_it_as_sni(
    make_proxy: Callable[..., ProxyRunner],
    make_tls_origin: Callable[..., Origin],
    ca_file: Path,
) -> None:
    named = make_tls_origin("named", names=("localhost",))
    names: list[str | None] = []
    context: ssl.SSLContext = named.server.context  # type: ignore[attr-defined]
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    runner = make_proxy(_with(FAST, upstream_ca_file=ca_file))
    backend = Backend(id="named", address="localhost", port=named.port, tls=True)
    runner.route(proxy_for("app.example.org", backend))
    assert get(runner).text == "named / 0"
    assert names == ["localhost"]


def _with(settings: DataPlaneSettings, **changes: Any) -> DataPlaneSettings:
    return dataclasses.replace(settings, **changes)
