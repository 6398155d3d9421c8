"""The node's default for the client's address (``--forwarded-for``) through a real nginx
driven by Portway: a proxy's own ``privacy`` setting and the node's, with and without a
trusted peer. (The per-proxy behaviour every data plane shares is in tests/conformance.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portway.model import Privacy
from tests.conformance.client import get
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.conftest import NginxRunner


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted-peer"])
@pytest.mark.parametrize(
    ("node", "setting"), [(True, "off"), (False, "inherit")], ids=["proxy-off", "node-off"]
)
def test_privacy_off_sends_no_client_address_and_none_of_the_clients(
    make_nginx: Callable[..., NginxRunner], origin: Origin, node: bool, setting: str, trusted: bool
) -> None:
    runner = make_nginx(forwarded_for=node, trusted_proxies=("127.0.0.0/8",) if trusted else ())
    privacy = Privacy(forwarded_for=setting)
    runner.route(proxy_for("app.example.org", origin.backend(), privacy=privacy))
    spoofs = {"X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6"}
    get(runner.port, "app.example.org", "/", spoofs)
    seen = origin.seen[-1]
    assert [seen.header(name) for name in spoofs] == [None, None, None]
    assert (seen.header("X-Forwarded-Proto"), seen.header("X-Forwarded-Host")) == (
        "http",
        "app.example.org",
    )


def test_privacy_on_overrides_a_node_default_of_off(
    make_nginx: Callable[..., NginxRunner], origin: Origin
) -> None:
    runner = make_nginx(forwarded_for=False)
    on = proxy_for("on.example.org", origin.backend(), privacy=Privacy(forwarded_for="on"))
    runner.route(on, proxy_for("off.example.org", origin.backend()))
    get(runner.port, "on.example.org", "/", {"X-Real-IP": "6.6.6.6"})
    seen = origin.seen[-1]
    assert (seen.header("X-Forwarded-For"), seen.header("X-Real-IP")) == ("127.0.0.1", None)
    assert seen.header("Forwarded") == "for=127.0.0.1;proto=http;host=on.example.org"
    get(runner.port, "off.example.org", "/")
    assert origin.seen[-1].header("X-Forwarded-For") is None
