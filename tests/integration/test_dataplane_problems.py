"""A snapshot nginx or HAProxy cannot apply, through a real ``portway serve --dataplane
nginx|haproxy``: the last good configuration keeps serving, and the refusal shows in
``/metrics`` (labelled by plane) and in the affected proxy's ``dataplane`` field."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.drivers.conftest import NGINX
from tests.drivers.haproxy_runner import HAPROXY
from tests.integration.harness import Backend, Portway, create_project_and_proxy, wait_routed

PLANES = {
    "nginx": ["--dataplane", "nginx", "--nginx-binary", NGINX],
    "haproxy": ["--dataplane", "haproxy", "--haproxy-binary", HAPROXY],
}


@pytest.fixture(params=sorted(PLANES))
def plane(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Portway]]:
    kind = request.param
    prefix = str(tmp_path / kind)
    pw = Portway(tmp_path / "data", extra=[*PLANES[kind], f"--{kind}-prefix", prefix])
    pw.start()
    yield kind, pw
    pw.stop()


def _metric(pw: Portway, name: str, kind: str) -> float:
    text = httpx.get(f"{pw.metrics_url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f'{name}{{plane="{kind}"}} '):
            return float(line.split()[-1])
    raise AssertionError(f"{name} for {kind} not in /metrics")


def _show(pw: Portway, proxy_id: str) -> dict[str, object]:
    r = pw.api("GET", f"/v1/alpha/proxies/{proxy_id}")
    assert r.status_code == 200, r.text
    out: dict[str, object] = r.json()["proxy"]["dataplane"]
    return out


def test_a_refused_snapshot_keeps_the_last_good_one_and_is_reported(
    plane: tuple[str, Portway], backends: list[Backend]
) -> None:
    kind, pw = plane
    good = create_project_and_proxy(pw, "alpha", "good.alpha.test", [backends[0].port])
    wait_routed(pw, "good.alpha.test", timeout=20)
    assert _show(pw, good["id"]) == {"plane": kind, "applied": True, "error": None, "problems": []}
    assert _metric(pw, "portway_dataplane_apply_failures_total", kind) == 0
    applied = _metric(pw, "portway_dataplane_applied_version", kind)
    assert applied >= good["revision"]

    # A backend named by a hostname that does not resolve: the daemon's own check of the
    # configuration (nginx -t, haproxy -c) refuses it, which Portway cannot know before.
    body = {"proxy": {"hostname": "bad.alpha.test", "backends": [{"address": "nx.invalid"}]}}
    body["proxy"]["backend_port"] = backends[1].port  # type: ignore[index]
    r = pw.api("POST", "/v1/alpha/proxies", json=body)
    assert r.status_code == 201, r.text
    bad = r.json()["proxy"]
    deadline = time.monotonic() + 20
    while _metric(pw, "portway_dataplane_apply_failures_total", kind) < 1:
        assert time.monotonic() < deadline, "the refusal never showed in /metrics"
        time.sleep(0.05)
    assert _metric(pw, "portway_dataplane_failing", kind) == 1
    assert _metric(pw, "portway_dataplane_applied_version", kind) == applied
    status = _show(pw, bad["id"])
    assert status["applied"] is False
    assert isinstance(status["error"], str) and "refused" in status["error"], status
    assert "nx.invalid" in status["error"]
    assert _show(pw, good["id"])["applied"] is True  # its revision is still in force
    for _ in range(10):  # the last good configuration keeps serving
        assert pw.get("good.alpha.test").json()["backend"] == "b0"

    # The next snapshot is tried afresh: removing the bad proxy applies again.
    assert pw.api("DELETE", f"/v1/alpha/proxies/{bad['id']}").status_code == 204
    deadline = time.monotonic() + 20
    while _metric(pw, "portway_dataplane_failing", kind) != 0:
        assert time.monotonic() < deadline, "the next snapshot never applied"
        time.sleep(0.05)
    assert _metric(pw, "portway_dataplane_applied_version", kind) > applied
    assert pw.get("good.alpha.test").json()["backend"] == "b0"
