"""``portway serve --config FILE`` as a real node: the file's settings route traffic, and
SIGHUP re-reads it, applying live settings in the control process and in workers."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import Backend, Portway, create_project_and_proxy, wait_routed

BIG = {"X-Big": "x" * 4000}


def big_header_status(pw: Portway) -> int:
    return pw.get("conf.alpha.test", headers=BIG).status_code


def wait_for(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("workers", [0, 2])
def test_sighup_applies_live_settings_and_names_restart_ones(
    tmp_path: Path, backends: list[Backend], workers: int
) -> None:
    config = tmp_path / "portway.toml"
    before, after = tmp_path / "before.log", tmp_path / "after.log"
    config.write_text(f'max_header_bytes = 2048\naccess_log = "{before}"\n')
    pw = Portway(tmp_path / "data", workers=workers, extra=["--config", str(config)])
    pw.start()
    try:
        assert pw.proc is not None
        create_project_and_proxy(pw, "alpha", "conf.alpha.test", [backends[0].port])
        wait_routed(pw, "conf.alpha.test")
        assert big_header_status(pw) == 431  # the file's limit, not the 32 KiB default

        config.write_text(
            f'max_header_bytes = 65536\naccess_log = "{after}"\nupstream_pool_size = 8\n'
        )
        pw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: big_header_status(pw) == 200)
        # Every worker has it: fresh connections land on all of them.
        assert {big_header_status(pw) for _ in range(20)} == {200}

        config.write_text('max_header_bytes = "large"\n')
        pw.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert pw.proc.poll() is None
        assert {big_header_status(pw) for _ in range(10)} == {200}  # the running settings
    finally:
        assert pw.stop() == 0
    out = pw.output
    assert "SIGHUP: applied access_log, max_header_bytes" in out, out
    assert "SIGHUP: upstream_pool_size changed but need a restart" in out, out
    bad = [line for line in out.splitlines() if "key 'max_header_bytes'" in line]
    assert len(bad) == 1, out
    assert "expected an integer, got a string; the running settings stay" in bad[0]
    # The log moved with the reload: the 31+ answers after it are all in the new file.
    assert [json.loads(line)["status"] for line in before.read_text().splitlines()][-1] == 200
    reopened = [json.loads(line)["status"] for line in after.read_text().splitlines()]
    assert reopened.count(200) >= 31, reopened


def test_keepalive_timeout_changes_on_sighup(tmp_path: Path, backends: list[Backend]) -> None:
    config = tmp_path / "portway.toml"
    config.write_text("keepalive_timeout = 60\n")
    pw = Portway(tmp_path / "data", extra=["--config", str(config)])
    pw.start()
    try:
        assert pw.proc is not None
        create_project_and_proxy(pw, "alpha", "conf.alpha.test", [backends[0].port])
        wait_routed(pw, "conf.alpha.test")
        config.write_text("keepalive_timeout = 0.3\n")
        pw.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        # One keep-alive connection: idle past the new timeout, the node closes it.
        with httpx.Client(base_url=pw.http_url, headers={"Host": "conf.alpha.test"}) as client:
            first = client.get("/")
            assert first.status_code == 200
            time.sleep(1.2)
            second = client.get("/")  # httpx reconnects when the node closed the old one
            assert second.status_code == 200
            # httpx reports the same connection only while it stays open.
            assert first.extensions["network_stream"] is not second.extensions["network_stream"]
    finally:
        assert pw.stop() == 0
