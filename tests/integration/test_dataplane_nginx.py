"""``portway serve --dataplane nginx``: the same API, and the traffic served by a real nginx
that Portway starts, configures from each snapshot and reloads (issue 11 §1, §2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.drivers.conftest import NGINX
from tests.integration.harness import Backend, Portway, create_project_and_proxy, wait_routed


@pytest.fixture
def nginx_portway(tmp_path: Path) -> Iterator[Portway]:
    pw = Portway(
        tmp_path / "data",
        extra=[
            "--dataplane",
            "nginx",
            "--nginx-binary",
            NGINX,
            "--nginx-prefix",
            str(tmp_path / "ngx"),
        ],
    )
    pw.start()
    yield pw
    pw.stop()


def test_proxies_made_through_the_api_are_served_by_nginx(
    nginx_portway: Portway, backends: list[Backend], tmp_path: Path
) -> None:
    pw = nginx_portway
    assert pw.get("nobody.test").status_code == 404  # Portway's page, from nginx
    proxy = create_project_and_proxy(pw, "alpha", "app.alpha.test", [backends[0].port])
    wait_routed(pw, "app.alpha.test", timeout=20)
    response = pw.get("app.alpha.test", "/x")
    assert response.json()["backend"] == "b0"
    assert response.headers["server"].startswith("nginx")
    enabled = list((tmp_path / "ngx" / "conf" / "sites-enabled").iterdir())
    assert len(enabled) == 1 and enabled[0].is_symlink()
    # The version nginx applied reaches the metrics, as for the built-in data plane.
    text = httpx.get(f"{pw.metrics_url}/metrics", timeout=5).text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("portway_snapshot_")
    }
    assert values["portway_snapshot_applied_version"] == values["portway_snapshot_version"] > 0
    # A deleted proxy is gone from nginx.
    r = pw.api("DELETE", f"/v1/alpha/proxies/{proxy['id']}")
    assert r.status_code == 204, r.text
    wait_routed(pw, "app.alpha.test", status=404, timeout=20)
    assert list((tmp_path / "ngx" / "conf" / "sites-enabled").iterdir()) == []


def test_workers_and_nginx_do_not_mix(tmp_path: Path) -> None:
    pw = Portway(tmp_path / "data", workers=2, extra=["--dataplane", "nginx"])
    with pytest.raises(RuntimeError, match="--workers"):
        pw.start()
