"""Per-proxy client-address privacy: with ``privacy.forwarded_for`` off (or inherited
from a node whose ``forwarded_for`` is off) the backend learns nothing of the client's
address: neither Portway's X-Forwarded-For / Forwarded nor the client's own, nor a
client's X-Real-IP, however trusted the peer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from portway.dataplane import DataPlaneSettings
from portway.model import Privacy
from tests.dataplane.conftest import FAST, Origin, ProxyRunner, proxy_for
from tests.dataplane.test_forwarding import request

SPOOFS = {
    "X-Forwarded-For": "6.6.6.6",
    "Forwarded": "for=6.6.6.6",
    "X-Real-IP": "6.6.6.6",
}
ADDRESS_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _run(
    make_proxy: Callable[..., ProxyRunner],
    origin: Origin,
    *,
    node: bool,
    proxy: str,
    trusted: bool = False,
) -> dict[str, str | None]:
    settings = dataclasses.replace(
        FAST, forwarded_for=node, trusted_proxies=("127.0.0.0/8",) if trusted else ()
    )
    runner = make_proxy(settings)
    privacy = Privacy(forwarded_for=proxy)
    runner.route(proxy_for("app.example.org", origin.backend(), privacy=privacy))
    request(runner.port, SPOOFS)
    seen = origin.seen[-1]
    names = (*ADDRESS_HEADERS, "X-Forwarded-Proto", "X-Forwarded-Host")
    return {name: seen.header(name) for name in names}


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted-peer"])
@pytest.mark.parametrize(
    ("node", "proxy"), [(True, "off"), (False, "inherit")], ids=["proxy-off", "node-off"]
)
def test_off_sends_no_client_address_and_passes_none_of_the_clients(
    make_proxy: Callable[..., ProxyRunner], origin: Origin, node: bool, proxy: str, trusted: bool
) -> None:
    seen = _run(make_proxy, origin, node=node, proxy=proxy, trusted=trusted)
    assert [seen[name] for name in ADDRESS_HEADERS] == [None, None, None]
    # What is not an address still goes: the backend builds its URLs from these.
    assert (seen["X-Forwarded-Proto"], seen["X-Forwarded-Host"]) == ("http", "app.example.org")


@pytest.mark.parametrize(("node", "proxy"), [(True, "inherit"), (False, "on")])
def test_on_sends_the_address_and_never_a_clients_spoof(
    make_proxy: Callable[..., ProxyRunner], origin: Origin, node: bool, proxy: str
) -> None:
    seen = _run(make_proxy, origin, node=node, proxy=proxy)
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["Forwarded"] == "for=127.0.0.1;proto=http;host=app.example.org"
    assert seen["X-Real-IP"] is None


def test_a_sighup_changing_the_node_default_applies_to_the_next_request(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(FAST)
    runner.route(proxy_for("app.example.org", origin.backend()))
    request(runner.port, {})
    assert origin.seen[-1].header("X-Forwarded-For") == "127.0.0.1"
    off = DataPlaneSettings(**{**dataclasses.asdict(FAST), "forwarded_for": False})
    runner.loop.call_soon_threadsafe(runner.dp.reconfigure, off)
    request(runner.port, {})
    assert origin.seen[-1].header("X-Forwarded-For") is None
