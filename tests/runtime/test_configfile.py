"""What a re-read config file changes on a running node: live keys switch, the others
keep their running values, and a flag given at start still overrides the file."""

from __future__ import annotations

from pathlib import Path

from portway.runtime.config import Listen
from portway.runtime.configfile import Sources, changed, take_live


def test_reload_takes_live_keys_and_keeps_restart_keys(tmp_path: Path) -> None:
    path = tmp_path / "portway.toml"
    path.write_text('http = "127.0.0.1:9001"\nmax_header_bytes = 2048\n')
    sources = Sources(path=path)
    running = sources.load()
    path.write_text(
        'http = "127.0.0.1:9002"\nmax_header_bytes = 4096\nworkers = 3\n'
        'trusted_proxies = ["10.1.0.0/16"]\nlog_level = "debug"\n'
    )
    fresh = sources.load()
    assert {s.key for s in changed(running, fresh)} == {
        "http",
        "max_header_bytes",
        "workers",
        "trusted_proxies",
        "log_level",
    }
    now = take_live(running, fresh)
    assert now.dataplane.max_header_bytes == 4096
    assert now.dataplane.trusted_proxies == ("10.1.0.0/16",)
    assert now.log_level == "debug"
    assert now.http == Listen(host="127.0.0.1", port=9001)  # needs a restart
    assert now.workers == 0
    assert {s.key for s in changed(running, now)} == {
        "max_header_bytes",
        "trusted_proxies",
        "log_level",
    }


def test_a_flag_given_at_start_still_wins_after_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "portway.toml"
    path.write_text("keepalive_timeout = 5\n")
    sources = Sources(
        path=path,
        given={"keepalive_timeout": 1.5},
        labels={"keepalive_timeout": "--keepalive-timeout"},
    )
    assert sources.load().dataplane.keepalive_timeout == 1.5
    path.write_text("keepalive_timeout = 9\nread_timeout = 7\n")
    again = sources.load()
    assert again.dataplane.keepalive_timeout == 1.5
    assert again.dataplane.read_timeout == 7.0
