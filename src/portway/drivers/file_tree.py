"""A daemon's configuration tree (nginx's, HAProxy's) and writing it to disk: a pure diff
between two trees, and the I/O that carries it out (blocking; the drivers run it in a
thread).

Each file is written to a temporary name in its directory and renamed over the old one,
so the daemon (or an operator's ``nginx -t``, ``haproxy -c``) never reads half a file;
private keys are created 0600 before a byte is written. Only what changed is touched, so one proxy's
change costs a few files however many proxies there are, and undoing a refused tree is
the reverse diff.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from portway.drivers.problems import Problem


@dataclass(frozen=True, slots=True)
class FileTree:
    """Files (relative path → text), symlinks (path → target), which files are private
    keys (written 0600), and what the render reported about the proxies."""

    files: Mapping[str, str]
    links: Mapping[str, str]
    secrets: frozenset[str] = frozenset()
    problems: tuple[Problem, ...] = ()


_EMPTY = FileTree(files={}, links={})


@dataclass(frozen=True, slots=True)
class TreeDiff:
    """What turns one tree into another on disk."""

    write: Mapping[str, str]
    link: Mapping[str, str]
    remove: tuple[str, ...]
    secrets: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.write or self.link or self.remove)


def diff(old: FileTree | None, new: FileTree) -> TreeDiff:
    before = old or _EMPTY
    write = {p: t for p, t in new.files.items() if before.files.get(p) != t}
    link = {p: t for p, t in new.links.items() if before.links.get(p) != t}
    gone = (set(before.files) - set(new.files)) | (set(before.links) - set(new.links))
    return TreeDiff(write, link, tuple(sorted(gone)), new.secrets)


def same(a: FileTree | None, b: FileTree) -> bool:
    return a is not None and (a.files, a.links, a.secrets) == (b.files, b.links, b.secrets)


def carry_out(root: Path, change: TreeDiff) -> None:
    for path, text in change.write.items():
        write_file(root / path, text, secret=path in change.secrets)
    for path, target in change.link.items():
        _symlink(root / path, target)
    for path in change.remove:
        (root / path).unlink(missing_ok=True)


def write_file(path: Path, text: str, *, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    mode = 0o600 if secret else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # a .tmp left by a crash may have had another mode
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, path)
