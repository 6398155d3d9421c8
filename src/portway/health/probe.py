"""One health probe over the network: an HTTP request or a TCP connect (over TLS to a
backend with ``tls`` set, with the data plane's context, so a probe checks what the
traffic will meet: a backend whose handshake fails is down)."""

from __future__ import annotations

import asyncio
import os
import ssl
from typing import Any

from portway.dataplane.resolve import allowed_addresses
from portway.errors import LocalProtocolError, RefusedAddressError
from portway.model import HealthCheck
from portway.model.backend_policy import BackendPolicy
from portway.protocol.grammar import is_field_value, is_origin_form, is_token


def probe_request(check: HealthCheck, default_host: str) -> bytes:
    """The probe's request head, or LocalProtocolError when a tenant-chosen part is
    outside its RFC grammar. The API and the snapshot builder refuse such checks already;
    this keeps the writer itself from ever putting a CR or LF of a tenant's on the wire."""
    host = check.host or default_host
    parts = (
        ("method", check.method, is_token),
        ("path", check.path, is_origin_form),
        ("host", host, is_field_value),
    )
    for name, value, allowed in parts:
        if not value or not allowed(value):
            raise LocalProtocolError(f"health_check.{name} {value!r} cannot be sent")
    return (
        f"{check.method} {check.path} HTTP/1.1\r\nHost: {host}\r\n"
        "User-Agent: portway-health-check\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")


async def probe(
    address: str,
    port: int,
    check: HealthCheck,
    expected: frozenset[int],
    default_host: str,
    policy: BackendPolicy,
    tls: ssl.SSLContext | None = None,
) -> str | None:
    """None when the backend is healthy, else a short reason. Only addresses ``policy``
    allows are probed: a probe is a connection made on a tenant's behalf too. ``tls``:
    the backend is spoken to over TLS with that context."""
    try:
        request = None if check.type == "tcp" else probe_request(check, default_host)
    except LocalProtocolError as exc:
        return exc.message
    try:
        return await asyncio.wait_for(
            _probe(address, port, request, expected, policy, tls), check.timeout
        )
    except RefusedAddressError as exc:
        return f"refused by the backend policy: {exc.message}"
    except TimeoutError:
        return f"timeout after {check.timeout:g}s"
    except OSError as exc:
        # asyncio's connect errors carry "Connect call failed (...)" as strerror; the
        # errno's own text ("Connection refused") is what an operator wants to read.
        return os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__


async def _probe(
    address: str,
    port: int,
    request: bytes | None,
    expected: frozenset[int],
    policy: BackendPolicy,
    tls: ssl.SSLContext | None,
) -> str | None:
    reader, writer = await _connect(address, port, policy, tls)
    try:
        if request is None:  # a TCP check: the connect was the test
            return None
        writer.write(request)
        line = await reader.readline()
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            return "not an HTTP response"
        status = int(parts[1])
        return None if status in expected else f"status {status}"
    finally:
        writer.close()


async def _connect(
    address: str, port: int, policy: BackendPolicy, tls: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Like asyncio.open_connection, over the allowed addresses only, in order (TLS as
    the data plane does it: the backend's own name is verified and sent as SNI)."""
    wrap: dict[str, Any] = {"ssl": tls, "server_hostname": address} if tls is not None else {}
    error: OSError = OSError(f"{address} has no address")
    for ip in await allowed_addresses(asyncio.get_running_loop(), address, port, policy):
        try:
            return await asyncio.open_connection(ip, port, **wrap)
        except OSError as exc:
            error = exc
    raise error
