"""The OpenShift settings: the STOMP URL, the password file, the domain, the endpoint
types and the client id, from flags, the environment or the config file."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from portway.errors import ConfigError
from portway.runtime.config import StompUrl, parse_client_id, parse_endpoint_types, parse_stomp_url
from portway.runtime.configfile import Sources
from portway.sources.openshift import openshift_settings
from portway.sources.openshift_routes import OpenShiftPolicy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stomp://user:pass@127.0.0.1:61613/queue/routinginfo",
            StompUrl(
                host="127.0.0.1",
                port=61613,
                destination="/queue/routinginfo",
                username="user",
                password="pass",
            ),
        ),
        (
            "stomp://broker.example.org/topic/routinginfo",
            StompUrl(host="broker.example.org", port=61613, destination="/topic/routinginfo"),
        ),
        (
            "stomp://u%40x:p%3Aw%2Fd@[::1]:61614/queue/a.b-c_d",
            StompUrl(
                host="::1",
                port=61614,
                destination="/queue/a.b-c_d",
                username="u@x",
                password="p:w/d",
            ),
        ),
        ("", None),
        ("   ", None),
    ],
)
def test_stomp_urls(text: str, expected: StompUrl | None) -> None:
    assert parse_stomp_url(text, flag="--openshift-stomp") == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1/queue/routinginfo",
        "stomp+ssl://127.0.0.1/queue/routinginfo",
        "stomp://127.0.0.1",
        "stomp://127.0.0.1/routinginfo",
        "stomp://127.0.0.1/queue/",
        "stomp://127.0.0.1/queue/a/b",
        "stomp://127.0.0.1/queue/a?x=1",
        "stomp://127.0.0.1:99999/queue/a",
        "stomp://bad_host/queue/a",
    ],
)
def test_bad_stomp_urls_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_stomp_url(text, flag="--openshift-stomp")
    assert info.value.message.startswith("--openshift-stomp: ")
    assert "\n" not in info.value.message


def test_the_password_stays_out_of_repr_and_str() -> None:
    url = parse_stomp_url("stomp://user:hunter2@127.0.0.1/queue/q", flag="f")
    assert url is not None and url.topic is False
    assert "hunter2" not in repr(url) and "hunter2" not in str(url)
    assert str(url) == "stomp://user@127.0.0.1:61613/queue/q"


def test_endpoint_types_and_client_ids() -> None:
    flag = "--openshift-endpoint-types"
    assert parse_endpoint_types(("load_balancer, Web_Framework", "load_balancer"), flag=flag) == (
        "load_balancer",
        "web_framework",
    )
    with pytest.raises(ConfigError, match="at least one"):
        parse_endpoint_types((" , ",), flag=flag)
    with pytest.raises(ConfigError, match="is not an endpoint type"):
        parse_endpoint_types(("load balancer",), flag=flag)
    assert parse_client_id("", flag="--openshift-client-id") is None
    with pytest.raises(ConfigError):
        parse_client_id("node 1\n", flag="--openshift-client-id")


def test_settings_from_the_config_file_and_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "stomp.password"
    secret.write_text("from-the-file\n")
    path = tmp_path / "portway.toml"
    path.write_text(
        'openshift_stomp = "stomp://portway@127.0.0.1:61613/topic/routinginfo"\n'
        f'openshift_stomp_password_file = "{secret}"\n'
        'openshift_domain = "Cloud.Example.ORG"\n'
        'openshift_endpoint_types = ["load_balancer", "web_framework"]\n'
    )
    config = Sources(path=path, given={"openshift_client_id": "node-1"}).load()
    settings = openshift_settings(config)
    assert settings is not None
    assert settings.url.password == "from-the-file" and settings.url.topic
    assert settings.policy == OpenShiftPolicy(
        domain="cloud.example.org", endpoint_types=("load_balancer", "web_framework")
    )
    assert settings.client_id == "node-1"


def test_the_source_is_off_by_default_and_needs_a_domain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "node one.example")
    assert openshift_settings(Sources().load()) is None
    url = {"openshift_stomp": "stomp://127.0.0.1/queue/routinginfo"}
    with pytest.raises(ConfigError, match="--openshift-domain is required"):
        openshift_settings(Sources(given=url).load())
    settings = openshift_settings(
        Sources(given=url | {"openshift_domain": "cloud.example.org"}).load()
    )
    assert settings is not None
    assert settings.client_id == "portway-node-one.example"  # a header-safe default
    assert settings.policy.endpoint_types == ("load_balancer",)
    missing = {"openshift_stomp_password_file": str(tmp_path / "absent")}
    given = url | {"openshift_domain": "cloud.example.org"} | missing
    with pytest.raises(ConfigError, match="--openshift-stomp-password-file"):
        openshift_settings(Sources(given=given).load())
