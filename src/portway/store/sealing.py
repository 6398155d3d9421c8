"""The life of the keys that seal certificates' private keys: first start, rotation, prune.

The rules that keep every sealed value readable:

- a key file is made only where no other node can need another one (the caller says so),
  and never while the store holds values sealed with keys it does not have;
- a node does not start while the store holds values sealed with a key its file lacks;
- a key leaves the file only through :func:`prune`, and only once no row uses it (a
  certificate's or a TLS ticket key's: those are never re-sealed, they expire);
- every re-sealing is one store transaction (all rows or none) with its change-log row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from portway.errors import ConfigError, StoreError
from portway.store.keyfile import FileKeyring, create_key_file, read_keys, write_keys
from portway.store.keyring import SecretKey
from portway.store.reader import Reader
from portway.store.store import Store
from portway.store.tickets import reseal_ticket_keys, ticket_key_kids

log = logging.getLogger(__name__)

ACTOR = "system:secret-keys"


def prepare_keys(store: Store, keys: FileKeyring, *, may_create: bool) -> None:
    """At start-up: make or read the key file, check it opens every sealed key in the
    store, and seal the keys an older version stored in plain text."""
    usage = store.read(Reader.key_usage)
    sealed = sorted(kid for kid in usage if kid is not None)
    if not keys.path.exists():
        _make_first_key_file(keys.path, sealed, may_create=may_create)
    ring = keys.load()
    unknown = [kid for kid in sealed if kid not in ring.kids()]
    if unknown:
        raise ConfigError(
            f"the store holds keys sealed with {', '.join(unknown)}, which the secret key "
            f"file {keys.path} lacks: give this node the key file the other nodes use"
        )
    if usage.get(None):
        count = reseal(store, action="seal", plain_only=True)
        log.warning("sealed %d certificate keys that an older version stored in plain text", count)


def _make_first_key_file(path: Path, sealed: list[str], *, may_create: bool) -> None:
    if not may_create:
        raise ConfigError(
            f"secret key file {path} does not exist: make one with "
            f"'portway keys add --secret-key-file {path}' and give every node a copy"
        )
    if sealed:
        raise ConfigError(
            f"secret key file {path} is missing, but the store holds keys sealed with "
            f"{', '.join(sealed)}: put the key file back (from a backup or another node)"
        )
    key = create_key_file(path)
    log.info("made secret key file %s (key %s)", path, key.kid)


def reseal(store: Store, *, action: str, plain_only: bool = False) -> int:
    """Seal certificate keys again with the current key, in one transaction; then
    compact the database so the old values leave its files too."""
    kids = store.secrets.kids()
    if not kids:
        raise StoreError("this store was opened without a secret key: nothing to seal with")
    with store.transaction(ACTOR) as tx:
        count = tx.reseal_certificate_keys(plain_only=plain_only)
        kid = kids[0]
        tx.record(
            kind="secret_key",
            action=action,
            object_id=kid,
            project=None,
            after={"kid": kid, "certificates": count},
        )
    store.compact()
    return count


def add_key(path: Path) -> SecretKey:
    """A new key at the end of the file (it opens, it does not seal yet); makes the file
    when missing, with the new key as its only (so current) key."""
    if not path.exists():
        return create_key_file(path)
    keys = read_keys(path)
    key = SecretKey.generate()
    write_keys(path, [*keys, key])
    return key


def rotate(store: Store, path: Path, to: str | None = None) -> tuple[SecretKey, int]:
    """Make ``to`` (a kid in the key file at ``path``) or a new key current, then seal
    every certificate key with it. The store's secrets must read that file. The keys
    that were current before stay in the file until :func:`prune`."""
    listed = read_keys(path)
    if to is None:
        chosen = SecretKey.generate()
    else:
        matches = [k for k in listed if k.kid == to]
        if not matches:
            raise ConfigError(f"key {to} is not in {path}", field="--to")
        chosen = matches[0]
    write_keys(path, [chosen, *(k for k in listed if k.kid != chosen.kid)])
    if store.secrets.kids()[:1] != (chosen.kid,):  # another rotation raced this one
        raise ConfigError(f"{path} changed during the rotation: run it again")
    reseal_ticket_keys(store)  # before reseal's compaction, which then drops their old text
    return chosen, reseal(store, action="rotate")


def prune(store: Store, path: Path) -> list[str]:
    """Drop from the key file every key but the current one that no certificate key is
    sealed with; returns the kids dropped."""
    listed = read_keys(path)
    used = set(store.read(Reader.key_usage)) | ticket_key_kids(store)
    kept = [k for i, k in enumerate(listed) if i == 0 or k.kid in used]
    if len(kept) != len(listed):
        write_keys(path, kept)
    return [k.kid for k in listed if k not in kept]


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyUse:
    kid: str | None  # None: certificate keys still in plain text
    current: bool
    in_file: bool
    certificates: int


def usage(store: Store, path: Path) -> list[KeyUse]:
    """Every key in the file and every kid the store uses, with their certificate counts."""
    listed = [k.kid for k in read_keys(path)]
    used = store.read(Reader.key_usage)
    kids: list[str | None] = [
        *listed,
        *sorted(k for k in used if k is not None and k not in listed),
    ]
    if used.get(None):
        kids.append(None)
    return [
        KeyUse(
            kid=kid,
            current=bool(listed) and kid == listed[0],
            in_file=kid in listed,
            certificates=used.get(kid, 0),
        )
        for kid in kids
    ]
