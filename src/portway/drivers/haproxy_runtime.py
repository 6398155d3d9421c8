"""Talking to a running HAProxy: the Runtime API (the workers' stats socket) and the
master CLI (``show proc``, ``reload``). Thin I/O plus the pure parsing of answers."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from portway.errors import ConfigError

# What the commands haproxy_plan sends answer when they worked (2.6): nothing, or a
# line saying what ``set server addr`` changed.
_OK_PREFIXES = ("IP changed", "no need to change", "port changed")


@dataclass(frozen=True, slots=True)
class Processes:
    """``show proc`` on the master CLI."""

    master: int
    reloads: int
    failed: int
    workers: tuple[int, ...]
    old: tuple[int, ...]


def parse_proc(text: str) -> Processes:
    master = reloads = failed = 0
    workers: list[int] = []
    old: list[int] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("#"):
            section = line.strip("# ").split(" ")[0]
            continue
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        if fields[1] == "master":
            master, reloads = int(fields[0]), int(fields[2])
            if "[failed:" in line:
                failed = int(line.split("[failed:", 1)[1].split("]", 1)[0])
        elif fields[1] == "worker":
            (old if section == "old" else workers).append(int(fields[0]))
    return Processes(master, reloads, failed, tuple(workers), tuple(old))


def worked(answer: str) -> bool:
    text = answer.strip()
    return not text or text.startswith(_OK_PREFIXES)


async def ask(socket_path: str, line: str, timeout: float = 5.0) -> str:
    """Send one command and read the answer to the end (the stats socket closes after
    one command; the master CLI is told to ``quit``). ConfigError when it cannot."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path), timeout)
    except (OSError, TimeoutError) as err:
        raise ConfigError(f"cannot reach HAProxy at {socket_path}: {err}") from err
    try:
        writer.write(line.encode("ascii") + b"\n")
        data = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, TimeoutError) as err:
        raise ConfigError(f"HAProxy did not answer {line.split()[0]!r}: {err!r}") from err
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return data.decode("ascii", errors="replace")


async def processes(master_socket: str) -> Processes:
    return parse_proc(await ask(master_socket, "show proc;quit"))


async def worker_pid(stats_socket: str) -> int | None:
    """The pid of the worker that answers the stats socket, None while none does."""
    try:
        info = await ask(stats_socket, "show info", timeout=2.0)
    except ConfigError:
        return None
    for line in info.splitlines():
        if line.startswith("Pid:"):
            return int(line.split(":", 1)[1])
    return None
