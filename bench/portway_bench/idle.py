"""Memory with many open idle client connections."""

from __future__ import annotations

import resource
import socket
import time

from portway_bench.procs import Memory, Server


def raise_fd_limit() -> int:
    """Lift the soft fd limit to the hard one (children inherit it); return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def memory_with_idle_connections(server: Server, port: int, count: int) -> tuple[Memory, int]:
    """Open ``count`` connections that send nothing, then measure; returns (memory, opened)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", port))
            except OSError:
                sock.close()
                break
            socks.append(sock)
        time.sleep(2)  # let the workers accept and allocate for every connection
        return server.memory(), len(socks)
    finally:
        for sock in socks:
            sock.close()
