"""The operator's listen policy: --listen-ports parsed, and Portway's own ports reserved."""

from __future__ import annotations

import pytest

from portway.errors import ConfigError, ForbiddenError
from portway.model.listen_policy import ListenPolicy, PortRange, parse_ranges
from portway.runtime.configfile import build
from portway.runtime.settings import SETTINGS


def _config(**values: object):  # type: ignore[no-untyped-def]
    defaults = {s.key: s.default for s in SETTINGS}
    return build({**defaults, **values}, {})  # type: ignore[dict-item]


def test_ports_ranges_and_addresses_parse_in_order() -> None:
    got = parse_ranges(
        ("8000-8999,8772", "10.0.0.1:8773", "[::1]:9000-9001"), default_address="", flag="f"
    )
    assert got == (
        PortRange("", 8000, 8999),
        PortRange("", 8772, 8772),
        PortRange("10.0.0.1", 8773, 8773),
        PortRange("::1", 9000, 9001),
    )


@pytest.mark.parametrize(
    "bad", ["0", "65536", "9-8", "x", "8000-", "host:80", "[::1]80", "1.2.3:4"]
)
def test_bad_items_are_config_errors_naming_the_flag(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_ranges((bad,), default_address="", flag="--listen-ports")
    assert caught.value.field == "--listen-ports"


def test_the_node_reserves_its_own_ports_whatever_the_ranges_say() -> None:
    config = _config(
        listen_ports=("5000-10000",),
        api="127.0.0.1:5668",
        metrics="127.0.0.1:9568",
        toolforge_listen="127.0.0.1:8282",
    )
    policy = config.listen_policy
    for own in (5668, 8080, 8443, 9568, 8282):
        with pytest.raises(ForbiddenError):
            policy.check(own)
    assert policy.check(8772) == 8772
    assert policy.addresses(8772) == ("127.0.0.1",)  # --http's address by default


def test_without_listen_ports_no_port_may_be_claimed() -> None:
    with pytest.raises(ForbiddenError) as caught:
        ListenPolicy().check(8772)
    assert caught.value.field == "listen_port" and "none" in caught.value.message


def test_a_port_on_two_addresses_opens_on_both() -> None:
    policy = ListenPolicy((PortRange("10.0.0.1", 80, 90), PortRange("10.0.0.2", 85, 85)))
    assert policy.addresses(85) == ("10.0.0.1", "10.0.0.2")
    assert policy.addresses(80) == ("10.0.0.1",)


def test_the_nodes_backend_policy_refuses_its_listen_ports_and_toolforge_listeners() -> None:
    config = _config(
        listen_ports=("8772", "9000-9010"),
        toolforge_listen="127.0.0.1:8282",
        backend_allow=("127.0.0.0/8",),
    )
    policy = config.backend_policy
    for own in (8772, 9005, 8282, 8080):
        assert "own listener" in (policy.check("127.0.0.1", own) or ""), own
    assert policy.check("127.0.0.1", 9011) is None
