"""The tier's ticket keys as nginx's ``ssl_session_ticket_key`` files: the encrypting key
first, 80 bytes in nginx's order (name, HMAC key, AES key), 0600 in a 0700 directory,
files of dropped keys deleted; and the lines nginx.conf gets for them."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

from portway.drivers import ticket_files
from portway.drivers.haproxy_config import render as haproxy_render
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.nginx_config import render
from portway.drivers.nginx_options import NginxOptions
from portway.router import Snapshot
from portway.tls.tickets import Schedule, TicketKey, TicketKeys

SCHEDULE = Schedule(60.0)
T0 = 1_800_000_000.0


def _keys() -> tuple[TicketKey, TicketKey, TicketKey]:
    old, current, upcoming = (
        TicketKey.generate(s, SCHEDULE.expiry(s)) for s in (T0 - 60, T0, T0 + 60)
    )
    return old, current, upcoming


def test_the_encrypting_key_comes_first_in_nginx_byte_order(tmp_path: Path) -> None:
    old, current, upcoming = _keys()
    ordered = ticket_files.ordered(TicketKeys([old, upcoming, current]), T0 + 1)
    assert ordered[0] == current and set(ordered) == {old, current, upcoming}
    paths = ticket_files.write_keys(tmp_path / "tickets", ordered)
    first = Path(paths[0]).read_bytes()
    assert first == current.name + current.hmac_key + current.aes_key and len(first) == 80
    assert stat.S_IMODE((tmp_path / "tickets").stat().st_mode) == 0o700
    assert {stat.S_IMODE(Path(p).stat().st_mode) for p in paths} == {0o600}
    assert ticket_files.ordered(TicketKeys([upcoming]), T0 + 1) == []  # nothing encrypts yet


def test_files_of_keys_nginx_no_longer_reads_are_deleted(tmp_path: Path) -> None:
    old, current, upcoming = _keys()
    directory = tmp_path / "tickets"
    ticket_files.write_keys(directory, [current, old])
    kept = ticket_files.write_keys(directory, [upcoming, current])
    ticket_files.remove_others(directory, kept)
    assert sorted(p.name for p in directory.iterdir()) == sorted(Path(p).name for p in kept)


def test_nginx_conf_lists_the_key_files_in_order_in_the_tls_settings(tmp_path: Path) -> None:
    options = NginxOptions(
        https=(("127.0.0.1", 8443),),
        default_certificate=("/c/chain.pem", "/c/key.pem"),
        ticket_keys=("/t/a.key", "/t/b.key"),
    )
    conf = render(Snapshot(version=1), options).files["nginx.conf"]
    lines = [x.strip() for x in conf.splitlines() if "ssl_session_ticket_key" in x]
    assert lines == ['ssl_session_ticket_key "/t/a.key";', 'ssl_session_ticket_key "/t/b.key";']
    plain = NginxOptions(https=options.https, default_certificate=options.default_certificate)
    assert "ssl_session_ticket_key" not in render(Snapshot(version=1), plain).files["nginx.conf"]


def test_haproxy_gets_the_key_before_the_current_one_the_current_one_and_the_next() -> None:
    old, current, upcoming = _keys()
    older = TicketKey.generate(T0 - 120, SCHEDULE.expiry(T0 - 120))
    text = ticket_files.haproxy_text(TicketKeys([upcoming, older, current, old]), T0 + 1)
    lines = [base64.b64decode(line) for line in text.split()]
    # HAProxy's layout (name, AES, HMAC) and order: the penultimate line encrypts.
    assert lines == [k.name + k.aes_key + k.hmac_key for k in (old, current, upcoming)]
    alone = ticket_files.haproxy_text(TicketKeys([current]), T0 + 1).split()
    assert len(alone) == 3 and len(set(alone)) == 1  # three lines, always
    assert ticket_files.haproxy_text(TicketKeys([upcoming]), T0 + 1) == ""


def test_haproxy_binds_read_the_keys_file_which_is_private() -> None:
    options = HaproxyOptions(
        https=(("127.0.0.1", 8443),), default_certificate=True, ticket_keys="a2V5\n" * 3
    )
    config = haproxy_render(Snapshot(version=1), options)
    lines = config.files["haproxy.cfg"].splitlines()
    binds = [x for x in lines if x.strip().startswith("bind ") and " ssl " in x]
    assert binds and all("tls-ticket-keys" in b for b in binds)
    assert config.files["certs/tls-ticket-keys.txt"] == options.ticket_keys
    assert "certs/tls-ticket-keys.txt" in config.secrets
    plain = haproxy_render(
        Snapshot(version=1), HaproxyOptions(https=options.https, default_certificate=True)
    )
    assert "tls-ticket-keys" not in plain.files["haproxy.cfg"]
    # Mozilla's profile turns tickets off where their keys never rotate: so without keys.
    assert "no-tls-tickets" in plain.files["haproxy.cfg"]
    assert "no-tls-tickets" not in config.files["haproxy.cfg"]
