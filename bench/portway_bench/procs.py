"""Starting, watching and stopping the servers under test; ports and memory of a process tree."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StartError(Exception):
    """A server did not come up; the message says why (with the tail of its log)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Server:
    """One server process, its log file, and the ports it must open before it is 'up'."""

    name: str
    argv: Sequence[str]
    log: Path
    ports: Sequence[int]
    env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, **(self.env or {})}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # so stop() can signal the whole process group
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            if all(port_open(p) for p in self.ports):
                return
            time.sleep(0.05)
        self.stop()
        raise StartError(
            f"{self.name} did not open {list(self.ports)} in {timeout}s: {self.tail()}"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # Only this server's own process group, which start() created.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def tail(self, lines: int = 6) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def memory(self) -> Memory:
        assert self.proc is not None
        return tree_memory(self.proc.pid)


@dataclass(frozen=True)
class Memory:
    """RSS summed over a process tree (counts shared pages once per process) and PSS
    (shares them out, so the sum is what the tree really costs)."""

    rss_kib: int
    pss_kib: int
    processes: int

    def as_dict(self) -> dict[str, float]:
        return {
            "rss_mib": round(self.rss_kib / 1024, 1),
            "pss_mib": round(self.pss_kib / 1024, 1),
            "processes": self.processes,
        }


def tree_memory(root: int) -> Memory:
    pids = descendants(root) | {root}
    rss = pss = 0
    for pid in pids:
        rss += _field(Path(f"/proc/{pid}/status"), "VmRSS:")
        pss += _field(Path(f"/proc/{pid}/smaps_rollup"), "Pss:")
    return Memory(rss, pss, len(pids))


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _field(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
