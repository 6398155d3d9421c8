"""The secret key file: the keys that seal tenants' private keys, kept outside the database.

Format: text, one base64-encoded 32-byte key per line; blank lines and lines starting with
``#`` are ignored. The first key seals new values; every key listed opens what it sealed.
A file of exactly 32 bytes is read as one raw key, so ``head -c 32 /dev/urandom`` makes a
valid file too. Portway refuses a file that group or others may read: a key that may
have leaked has to be rotated, not quietly re-protected.

Portway writes the file only whole (a new file renamed over the old one), mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

from portway.errors import ConfigError
from portway.store.keyring import KEY_BYTES, Keyring, Sealed, SecretKey

log = logging.getLogger(__name__)

HEADER = (
    "# Portway secret keys: see docs/security.md, 'Secrets at rest'. The first key seals\n"
    "# new values; every key listed opens what it sealed. Keep this file mode 0600, and\n"
    "# give every node that shares the store the same file.\n"
)


def read_keys(path: Path) -> list[SecretKey]:
    """The keys in ``path``, current first; ConfigError (one readable line) otherwise."""
    try:
        info = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"secret key file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read secret key file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"secret key file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"secret key file {path} is readable by group or others (mode {mode:04o}): "
            f"chmod 600 {path}, and rotate the key if anyone else may have read it"
        )
    return parse_keys(data, path)


def parse_keys(data: bytes, source: Path) -> list[SecretKey]:
    if len(data) == KEY_BYTES:
        return [SecretKey(data)]
    bad = f"secret key file {source}"
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{bad} is neither 32 raw bytes nor base64 text") from None
    keys: list[SecretKey] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            material = base64.b64decode(line, validate=True)
        except binascii.Error:
            material = b""
        if len(material) != KEY_BYTES:
            raise ConfigError(f"{bad}, line {number}: not a base64-encoded 32-byte key")
        keys.append(SecretKey(material))
    if not keys:
        raise ConfigError(f"{bad} holds no key")
    if len({k.kid for k in keys}) != len(keys):
        raise ConfigError(f"{bad} lists the same key twice")
    return keys


def format_keys(keys: Sequence[SecretKey]) -> bytes:
    lines = [base64.b64encode(k.material).decode("ascii") for k in keys]
    return (HEADER + "".join(line + "\n" for line in lines)).encode("ascii")


def write_keys(path: Path, keys: Sequence[SecretKey]) -> None:
    """Replace ``path`` with ``keys`` in one rename, so no reader sees half a file."""
    tmp = _write_temporary(path, format_keys(keys))
    os.replace(tmp, path)
    _sync_dir(path.parent)


def create_key_file(path: Path) -> SecretKey:
    """A new key file of one random key; FileExistsError if ``path`` exists."""
    key = SecretKey.generate()
    tmp = _write_temporary(path, format_keys([key]))
    try:
        os.link(tmp, path)  # unlike a rename, never replaces a file another process made
    finally:
        tmp.unlink()
    _sync_dir(path.parent)
    return key


def _write_temporary(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileKeyring:
    """The keyring in a key file, read again whenever the file changes.

    So a running node seals with the key ``portway keys rotate`` made current, and opens
    values sealed with it, without a restart. A change that breaks the file (bad mode,
    bad line) is logged and the keys read before stay in use.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._ring: Keyring | None = None
        self._seen: tuple[int, ...] | None = None

    def load(self) -> Keyring:
        """Read the file now; ConfigError if it is missing, open to others or malformed."""
        with self._lock:
            self._seen = self._signature()
            self._ring = Keyring(read_keys(self.path))
            return self._ring

    def _signature(self) -> tuple[int, ...] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size, info.st_mode)

    def _current(self) -> Keyring:
        with self._lock:
            seen = self._signature()
            if self._ring is not None and seen == self._seen:
                return self._ring
            try:
                ring = Keyring(read_keys(self.path))
            except ConfigError as exc:
                if self._ring is None:
                    raise
                log.error("%s; still using the keys read before", exc.message)
                ring = self._ring
            self._ring, self._seen = ring, seen
            return ring

    def kids(self) -> tuple[str, ...]:
        return self._current().kids()

    def seal(self, plaintext: str, context: str) -> Sealed:
        return self._current().seal(plaintext, context)

    def open(self, sealed: Sealed, context: str) -> str:
        return self._current().open(sealed, context)
