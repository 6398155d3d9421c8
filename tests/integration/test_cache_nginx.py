"""``portway serve --dataplane nginx`` with a caching proxy made through the API: nginx
answers from its cache, and the API's purge drops a URL, counting it, or says what
nginx cannot purge (docs/caching.md#nginx)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataplane.cache_origin import CacheOrigin, cache_origin
from tests.drivers.conftest import NGINX
from tests.integration.harness import Portway, create_project_and_proxy, wait_routed

__all__ = ["cache_origin"]
HOST = "cache.alpha.test"


@pytest.fixture
def nginx_prefix() -> Iterator[Path]:
    """A prefix nginx's workers can reach whoever they run as: root's run as nobody,
    and pytest's tmp_path is 0700 (the driver would refuse caching proxies there)."""
    directory = Path(tempfile.mkdtemp(prefix="portway-i12-"))
    os.chmod(directory, 0o755)
    yield directory / "ngx"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def nginx_portway(tmp_path: Path, nginx_prefix: Path) -> Iterator[Portway]:
    extra = ["--dataplane", "nginx", "--nginx-binary", NGINX, "--nginx-prefix", str(nginx_prefix)]
    pw = Portway(tmp_path / "data", extra=extra)
    pw.start()
    yield pw
    pw.stop()


def test_nginx_caches_and_the_apis_purge_drops_a_url(
    nginx_portway: Portway, cache_origin: CacheOrigin
) -> None:
    pw = nginx_portway
    cache_origin.add("/", headers={"Cache-Control": "max-age=60"})
    cache_origin.add("/page", headers={"Cache-Control": "max-age=60"}, body=b"page")
    proxy = create_project_and_proxy(
        pw, "alpha", HOST, [cache_origin.port], cache={"enabled": True}
    )
    wait_routed(pw, HOST, timeout=20)
    assert pw.get(HOST, "/page").headers["cache-status"].startswith("portway; fwd=uri-miss")
    assert pw.get(HOST, "/page").headers["cache-status"] == "portway; hit"
    shown = pw.api("GET", f"/v1/alpha/proxies/{proxy['id']}").json()["proxy"]["dataplane"]
    assert shown["applied"] and shown["problems"] == []  # the cache is no longer reported
    path = f"/v1/alpha/proxies/{proxy['id']}/purge"
    answer = pw.api("POST", path, json={"purge": {"urls": ["/page", f"http://{HOST}/none"]}})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"purge": {"purged": 1}}
    assert pw.get(HOST, "/page").headers["cache-status"].startswith("portway; fwd=uri-miss")
    assert cache_origin.count("/page") == 2
    refused = pw.api("POST", path, json={"purge": {"prefixes": ["/"]}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "purge.prefixes"
