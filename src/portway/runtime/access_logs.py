"""Opening and switching the access log named by ``--access-log``, in whichever process
runs a data plane."""

from __future__ import annotations

import sys

from portway.dataplane.server import DataPlane
from portway.dataplane.settings import DataPlaneSettings
from portway.observability.access_log import AccessLog


def open_access_log(target: str | None) -> AccessLog | None:
    """The access log for ``--access-log``: a path, ``-`` for stdout, None for none.
    Each process appends with O_APPEND, and AccessLog writes whole batches of lines in
    one write, so workers' lines never mix."""
    if target is None:
        return None
    if target == "-":
        return AccessLog(sys.stdout)
    return AccessLog(open(target, "a", encoding="utf-8", buffering=1 << 16))


def check_access_log(target: str | None) -> None:
    """Raise OSError if ``target`` cannot be opened for appending (nothing else happens)."""
    if target is not None and target != "-":
        open(target, "a", encoding="utf-8").close()


def switch(plane: DataPlane, settings: DataPlaneSettings, fresh: AccessLog | None) -> None:
    """SIGHUP in one data plane: ``settings`` from the next connection or request on,
    and ``fresh`` (opened already) in place of the old access log, which is closed."""
    plane.reconfigure(settings)
    old, plane.access_log = plane.access_log, fresh
    if old is not None and old is not fresh:
        old.close()
