"""The dynamicproxy API of a real ``portway serve``, called as ``wmcs-webproxy`` calls it
(``requests`` with a JSON body and no Content-Type), with traffic through the data plane
after every change; and ``portway zone`` managing the zones it hands out."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests

from tests.integration.harness import Backend, Portway, wait_routed
from tests.integration.test_cli import cli


class WebproxyClient:
    """What the wmcs-webproxy script does: requests, ``data=json.dumps(...)``."""

    def __init__(self, pw: Portway, project: str, token: str) -> None:
        self.base = f"{pw.api_url}/dynamicproxy-api/v1/{project}"
        self.headers = {"X-Auth-Token": token}

    def call(self, method: str, path: str, body: object = None) -> requests.Response:
        data = None if body is None else json.dumps(body)
        response = requests.request(
            method, self.base + path, headers=self.headers, data=data, timeout=10
        )
        assert "Content-Type" not in response.request.headers
        return response


def _member(pw: Portway, project: str) -> str:
    assert pw.api("POST", "/v1/projects", json={"project": {"name": project}}).status_code == 201
    made = pw.api("POST", f"/v1/{project}/tokens", json={"token": {"role": "member"}})
    assert made.status_code == 201, made.text
    secret: str = made.json()["token"]["secret"]
    return secret


def _names(pw: Portway, host: str, count: int = 12) -> set[str]:
    return {pw.get(host).json()["backend"] for _ in range(count)}


def test_mapping_changes_reach_the_data_plane(portway: Portway, backends: list[Backend]) -> None:
    b0, b1, b2 = backends
    client = WebproxyClient(portway, "alpha", _member(portway, "alpha"))
    url = f"http://127.0.0.1:{b0.port}"

    put = client.call("PUT", "/mapping", {"domain": "wiki.alpha.test", "backends": [url]})
    assert (put.status_code, put.text) == (200, "")
    wait_routed(portway, "wiki.alpha.test")
    assert _names(portway, "wiki.alpha.test") == {"b0"}

    more = {"domain": "wiki.alpha.test", "backends": [f"http://127.0.0.1:{b1.port}"]}
    assert client.call("PUT", "/mapping", more).status_code == 200
    listed = client.call("GET", "/mapping").json()
    # Listed in address order (ports here), each URL as it was sent.
    both = sorted([(b0.port, url), (b1.port, f"http://127.0.0.1:{b1.port}")])
    assert listed == {
        "routes": [{"domain": "wiki.alpha.test", "backends": [text for _, text in both]}]
    }
    _wait_for(portway, "wiki.alpha.test", {"b0", "b1"})

    renamed = {"domain": "new.alpha.test", "backends": [f"http://127.0.0.1:{b2.port}"]}
    post = client.call("POST", "/mapping/wiki.alpha.test", renamed)
    assert (post.status_code, post.text) == (200, "OK")
    wait_routed(portway, "wiki.alpha.test", status=404)
    wait_routed(portway, "new.alpha.test")
    assert _names(portway, "new.alpha.test") == {"b2"}

    delete = client.call("DELETE", "/mapping/new.alpha.test")
    assert (delete.status_code, delete.text) == (200, "deleted")
    wait_routed(portway, "new.alpha.test", status=404)
    gone = client.call("GET", "/mapping/new.alpha.test")
    assert (gone.status_code, gone.text) == (404, "No such domain")


def _wait_for(pw: Portway, host: str, names: set[str], tries: int = 200) -> None:
    for _ in range(tries):
        if _names(pw, host) == names:
            return
    raise AssertionError(f"{host} did not balance over {names}")


def test_zones_made_with_the_cli_are_what_the_api_offers(
    portway: Portway, backends: list[Backend]
) -> None:
    client = WebproxyClient(portway, "alpha", _member(portway, "alpha"))
    _member(portway, "beta")
    made = cli(portway, "zone", "create", "wmcloud.test", "--shared", "--default")
    assert made.returncode == 0, made.stderr
    assert cli(portway, "zone", "create", "alpha.test", "--owner", "alpha").returncode == 0
    assert cli(portway, "zone", "create", "beta.test", "--owner", "beta").returncode == 0
    listed = cli(portway, "-f", "json", "zone", "list")
    assert listed.returncode == 0, listed.stderr
    assert {z["name"] for z in json.loads(listed.stdout)} == {
        "wmcloud.test",
        "alpha.test",
        "beta.test",
    }

    assert client.call("GET", "/zones").json() == {
        "alpha.test": {"deprecated": False, "default": False, "shared": False},
        "wmcloud.test": {"deprecated": False, "default": True, "shared": True},
    }
    url = f"http://127.0.0.1:{backends[0].port}"
    ok = client.call("PUT", "/mapping", {"domain": "wiki.wmcloud.test", "backends": [url]})
    assert ok.status_code == 200
    wait_routed(portway, "wiki.wmcloud.test")
    refused = client.call("PUT", "/mapping", {"domain": "x.beta.test", "backends": [url]})
    assert refused.status_code == 403
    assert refused.json()["error"]["field"] == "hostname"

    member_denied = cli(
        portway, "zone", "delete", "beta.test", token=client.headers["X-Auth-Token"]
    )
    assert member_denied.returncode != 0
    assert member_denied.stderr.count("\n") == 1
    assert cli(portway, "zone", "delete", "beta.test").returncode == 0
    after = cli(portway, "-f", "json", "zone", "list")
    assert "beta.test" not in {z["name"] for z in json.loads(after.stdout)}


@pytest.mark.parametrize("keystone", ["stopped", "hanging"])
def test_keystone_down_is_a_503_in_json_and_portways_own_tokens_keep_working(
    tmp_path: Path, backends: list[Backend], keystone: str
) -> None:
    with socket.socket() as hung:
        # "hanging": a listener that never accepts (the kernel completes the handshake,
        # nothing ever answers); "stopped": a port nothing listens on.
        hung.bind(("127.0.0.1", 0))
        port = hung.getsockname()[1]
        if keystone == "hanging":
            hung.listen(16)
        else:
            hung.close()
        password = tmp_path / "password"
        password.write_text("secret\n")
        pw = Portway(
            tmp_path / "data",
            extra=[
                "--keystone-url", f"http://127.0.0.1:{port}",
                "--keystone-user", "portway",
                "--keystone-password-file", str(password),
                "--keystone-timeout", "1",
            ],
        )  # fmt: skip
        pw.start()
        try:
            own = WebproxyClient(pw, "alpha", _member(pw, "alpha"))
            stranger = WebproxyClient(pw, "alpha", "gAAAAABnot-a-portway-token")
            body = {
                "domain": "wiki.alpha.test",
                "backends": [f"http://127.0.0.1:{backends[0].port}"],
            }
            for method, path, sent in [("GET", "/mapping", None), ("PUT", "/mapping", body)]:
                answer = stranger.call(method, path, sent)
                assert answer.status_code == 503, answer.text
                error = answer.json()["error"]
                assert error["code"] == 503
                assert error["message"].endswith("tokens cannot be checked"), error
            assert own.call("PUT", "/mapping", body).status_code == 200
            wait_routed(pw, "wiki.alpha.test")
        finally:
            pw.stop()
