"""The tier's TLS session-ticket keys as nginx's ``ssl_session_ticket_key`` files and
HAProxy's ``tls-ticket-keys`` file.

nginx reads an 80-byte file as key name (16), HMAC-SHA256 key (32) and AES-256 key (32):
the layout and algorithms of ``tls/openssl.py``'s callback, so nginx seals and opens
tickets exactly as the built-in plane does. The first file listed encrypts, every file
decrypts. Each key is one file named by its (public) key name, mode 0600 in a 0700
directory outside the tree that is diffed, since it is bytes and secret. nginx reads
them at each (re)load only; a key's expiry is therefore the reload that drops it.

HAProxy reads base64 lines of name (16), AES key (32) and HMAC key (32): another order,
the same algorithms. It holds exactly three keys, the last three lines: the penultimate
encrypts, all three decrypt. So it gets the key before the current one, the current one
and the next, and a key opens tickets for one slot after it stops sealing, not two.
A missing neighbour is the current key again (HAProxy wants three lines; a random one
would change the file, and so reload HAProxy, at every render).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from portway.tls.tickets import TicketKey, TicketKeys


def nginx_bytes(key: TicketKey) -> bytes:
    return key.name + key.hmac_key + key.aes_key


def ordered(keys: TicketKeys, now: float) -> list[TicketKey]:
    """The keys nginx gets at ``now``: the encrypting one first (none if no key
    encrypts now: nginx would seal with whichever came first), then every other."""
    current = keys.encrypting(now)
    if current is None:
        return []
    return [current, *(k for k in keys.all() if k.name != current.name)]


def haproxy_text(keys: TicketKeys, now: float) -> str:
    """The ``tls-ticket-keys`` file at ``now``; empty when no key encrypts now."""
    current = keys.encrypting(now)
    if current is None:
        return ""
    by_start = sorted(keys.all(), key=lambda k: k.starts_at)
    i = by_start.index(current)
    before = by_start[i - 1] if i > 0 else current
    after = by_start[i + 1] if i + 1 < len(by_start) else current
    return "".join(_haproxy_line(k) for k in (before, current, after))


def _haproxy_line(key: TicketKey) -> str:
    raw = key.name + key.aes_key + key.hmac_key
    return base64.b64encode(raw).decode("ascii") + "\n"


def write_keys(directory: Path, keys: list[TicketKey]) -> tuple[str, ...]:
    """Write each key's file (unless already there) and return the paths, in order."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    paths = []
    for key in keys:
        path = directory / f"{key.name.hex()}.key"
        if not path.exists():
            tmp = path.with_name(f".{path.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, nginx_bytes(key))
            finally:
                os.close(fd)
            os.replace(tmp, path)
        paths.append(str(path))
    return tuple(paths)


def remove_others(directory: Path, keep: tuple[str, ...]) -> None:
    """Delete the key files nginx no longer reads (after a reload without them)."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if str(path) not in keep:
            path.unlink(missing_ok=True)
