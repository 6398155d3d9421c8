"""The registration client, as the real Toolforge one behaves: one ``sendall``, one
``recv(1024)``. Tests call :func:`send` in-process, or run the very same function as
another Unix user through :data:`SCRIPT` (``python -c``), so identd sees that user."""

from __future__ import annotations

import inspect
import textwrap


def send(port: int, payload: bytes, host: str = "127.0.0.1") -> bytes:
    """Send ``payload`` to the 8282 listener; the one reply read."""
    import socket  # inside: SCRIPT carries only this function's source

    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


# argv: host, port, payload with backslash escapes ("register\\n.*\\n..."); prints the reply.
SCRIPT = inspect.getsource(send) + textwrap.dedent(
    """
    import sys
    payload = sys.argv[3].encode().decode("unicode_escape").encode()
    sys.stdout.write(send(int(sys.argv[2]), payload, sys.argv[1]).decode("latin-1"))
    """
)
