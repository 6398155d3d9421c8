"""The local CA writes every file 0600, whatever the umask (the data dir is private)."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

from portway.tls.local_ca import ensure_default_certificate


def test_ca_and_default_certificate_files_are_0600_even_under_umask_000(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        ensure_default_certificate(tmp_path / "data", "portway.test")
        late = dt.datetime.now(dt.UTC) + dt.timedelta(days=360)  # and on renewal
        ensure_default_certificate(tmp_path / "data", "portway.test", now=late)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "data").iterdir()}
    assert modes == {n: 0o600 for n in ("ca.pem", "ca-key.pem", "default.pem", "default-key.pem")}
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
