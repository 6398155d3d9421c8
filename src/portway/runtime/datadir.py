"""The data dir is private to the user Portway runs as: the directory 0700, its files 0600.

It holds the store, the local CA's key, the default certificate's key and the secret key
file. New files are created 0600 where they are written (store/engine.py,
tls/local_ca.py, store/keyfile.py); this module makes the directory private and tightens
what an older version, or a careless copy, left open.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

log = logging.getLogger("portway")


def prepare_data_dir(path: Path, *, leave: Path | None = None) -> None:
    """Create ``path`` 0700, or tighten it and the files in it, logging what changed.

    ``leave`` (the secret key file) is not tightened: a key file open to others is
    refused at start-up, since the key may already have leaked and must be rotated.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o700)
        log.warning("data dir %s was mode %04o, open to other users: now 0700", path, mode)
    skip = leave.resolve() if leave is not None else None
    opened = []
    for file in sorted(path.iterdir()):
        info = file.lstat()  # never follow a symlink out of the data dir
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode) or not mode & 0o077 or file.resolve() == skip:
            continue
        file.chmod(0o600)
        opened.append(f"{file.name} ({mode:04o})")
    if opened:
        log.warning("data dir files were open to other users, now 0600: %s", ", ".join(opened))
