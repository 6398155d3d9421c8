"""Resolve a backend address to the IP addresses the backend policy lets Portway use.

Shared by the data plane (``upstream.open_upstream``) and the active health checks, so
both connect only to an address that was checked: resolving here, not inside
``create_connection``, means a DNS answer that changes between the check and the
connect (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import socket

from portway.errors import RefusedAddressError
from portway.model.backend_policy import BackendPolicy, parse_ip


async def allowed_addresses(
    loop: asyncio.AbstractEventLoop, host: str, port: int, policy: BackendPolicy
) -> list[str]:
    """``host``'s addresses that ``policy`` allows, in the resolver's order (IP literals
    skip the resolver); RefusedAddressError when every one of them is refused."""
    literal = parse_ip(host)
    if literal is not None:
        reason = policy.check(literal, port)
        if reason is not None:
            raise RefusedAddressError(reason, field="address")
        return [host]
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    allowed = [ip for ip in found if policy.check(ip, port) is None]
    if found and not allowed:
        reason = policy.check(found[0], port) or "refused"
        raise RefusedAddressError(f"{host} resolves to {reason}", field="address")
    return allowed
