"""``portway serve`` flags: data-plane limits, the access log, and bad values refused with
one readable line."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.harness import (
    VENV_BIN,
    Backend,
    Portway,
    create_project_and_proxy,
    wait_routed,
)


@pytest.mark.parametrize("workers", [0, 2])
def test_access_log_and_header_limit_flags(
    tmp_path: Path, backends: list[Backend], workers: int
) -> None:
    log = tmp_path / "access.log"
    pw = Portway(
        tmp_path / "data",
        workers=workers,
        extra=["--access-log", str(log), "--max-header-bytes", "2048"],
    )
    pw.start()
    try:
        create_project_and_proxy(pw, "alpha", "log.alpha.test", [backends[0].port])
        wait_routed(pw, "log.alpha.test")
        assert pw.get("log.alpha.test", "/page?q=1").status_code == 200
        big = pw.get("log.alpha.test", headers={"X-Big": "x" * 4000})
        assert big.status_code == 431
    finally:
        assert pw.stop() == 0  # the drain flushes the log
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    page = [e for e in entries if e["path"] == "/page?q=1" or e["path"] == "/page"]
    assert page, entries
    entry = page[0]
    assert entry["status"] == 200 and entry["method"] == "GET"
    assert entry["project"] == "alpha"
    assert entry["backend"] == f"127.0.0.1:{backends[0].port}"
    assert entry["client"].startswith("127.0.0.1")
    assert entry["duration_ms"] >= 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--http", "nonsense"], "--http"),
        (["--trusted-proxy", "10.0.0.0/33"], "--trusted-proxy"),
        (["--max-connections", "0"], "--max-connections"),
        (["--default-zone", "-bad-"], "--default-zone"),
    ],
)
def test_bad_flags_fail_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [str(VENV_BIN / "portway"), "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    error_lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(error_lines) == 1 and needle in error_lines[0], done.stderr
    assert error_lines[0].startswith("portway: ")
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 20


def test_port_in_use_is_one_line(tmp_path: Path, portway: Portway) -> None:
    done = subprocess.run(
        [
            str(VENV_BIN / "portway"),
            "serve",
            "--data-dir",
            str(tmp_path / "other"),
            "--http",
            f"127.0.0.1:{portway.http_port}",
            "--https",
            "",
            "--api",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "in use" in done.stderr.lower(), done.stderr
