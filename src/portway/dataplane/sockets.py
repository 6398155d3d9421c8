"""Listening sockets every worker can bind at once (SO_REUSEPORT): the kernel spreads
new connections over the workers that listen on the same address and port."""

from __future__ import annotations

import socket


def reuseport_socket(host: str, port: int, backlog: int = 4096) -> socket.socket:
    """A bound, listening, non-blocking socket that other workers can bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
