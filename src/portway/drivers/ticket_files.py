"""The tier's TLS session-ticket keys as nginx's ``ssl_session_ticket_key`` files.

nginx reads an 80-byte file as key name (16), HMAC-SHA256 key (32) and AES-256 key (32):
the layout and algorithms of ``tls/openssl.py``'s callback, so nginx seals and opens
tickets exactly as the built-in plane does. The first file listed encrypts, every file
decrypts. Each key is one file named by its (public) key name, mode 0600 in a 0700
directory outside the tree that is diffed, since it is bytes and secret. nginx reads
them at each (re)load only; a key's expiry is therefore the reload that drops it.
"""

from __future__ import annotations

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
