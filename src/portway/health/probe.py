"""One health probe over the network: an HTTP request or a TCP connect."""

from __future__ import annotations

import asyncio
import os

from portway.model import HealthCheck


async def probe(
    address: str, port: int, check: HealthCheck, expected: frozenset[int], default_host: str
) -> str | None:
    """None when the backend is healthy, else a short reason."""
    try:
        return await asyncio.wait_for(
            _probe(address, port, check, expected, default_host), check.timeout
        )
    except TimeoutError:
        return f"timeout after {check.timeout:g}s"
    except OSError as exc:
        # asyncio's connect errors carry "Connect call failed (...)" as strerror; the
        # errno's own text ("Connection refused") is what an operator wants to read.
        return os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__


async def _probe(
    address: str, port: int, check: HealthCheck, expected: frozenset[int], default_host: str
) -> str | None:
    reader, writer = await asyncio.open_connection(address, port)
    try:
        if check.type == "tcp":
            return None
        host = check.host or default_host
        writer.write(
            f"{check.method} {check.path} HTTP/1.1\r\nHost: {host}\r\n"
            "User-Agent: portway-health-check\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        line = await reader.readline()
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            return "not an HTTP response"
        status = int(parts[1])
        return None if status in expected else f"status {status}"
    finally:
        writer.close()
