"""The Toolforge registration listener (TCP 8282): one request per connection, exactly
one reply, then close (compat.md §2; the parsing is ``protocol.registration``).

For each connection, in order:

1. Over ``max_connections`` open at once → ``fail`` at once (a flood cannot pile up
   identd look-ups or threads).
2. Read until the request is complete; nothing for ``idle_timeout`` seconds, a line
   over 4 KiB or anything that is not a request → ``fail``.
3. Who is calling: a ``token`` line is checked by the registrar; otherwise the client's
   identd is asked (RFC 1413) and its user must be ``<prefix>.<tool>``. A failure is
   answered with one explanatory line, ``fail: <reason>\\n``.
4. The registrar applies the change in one service call (in a thread: the service is
   synchronous) → ``ok``; a refusal (bad destination, a pattern that does not compile,
   a quota, a policy) → ``fail``.

Every refusal is logged with the peer and the reason; nothing is half applied, since the
registrar's one call is one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from portway.errors import PortwayError
from portway.protocol.registration import FAIL, MAX_LINE, OK, UNREGISTER, Registration, parse
from portway.sources.base import DOWN, STARTING, UP
from portway.sources.identd import IdentError, lookup
from portway.sources.tools import ToolRoute, ToolRoutes

log = logging.getLogger("portway.sources.toolforge")


@dataclass(frozen=True, kw_only=True, slots=True)
class ListenerSettings:
    host: str = "127.0.0.1"
    port: int = 8282
    user_prefix: str = "tools"
    ident_port: int = 113
    ident_timeout: float = 5.0
    idle_timeout: float = 5.0
    max_connections: int = 64


class RegistrationListener:
    """Serves the protocol on a bound socket; ``serve`` runs until cancelled."""

    name = "toolforge"

    def __init__(self, registrar: ToolRoutes, settings: ListenerSettings) -> None:
        self._registrar = registrar
        self._settings = settings
        self._open = 0
        self.state = STARTING
        self.outcomes: dict[str, int] = {}  # "applied", "refused", "unidentified"

    async def run(self) -> None:
        """Serve on the configured address until cancelled (the Source seam)."""
        server = await self.serve(self._settings.host, self._settings.port)
        self.state = UP
        try:
            await server.serve_forever()
        finally:
            self.state = DOWN
            server.close()

    async def serve(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._connection, host, port, limit=MAX_LINE * 4)

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        self._open += 1
        try:
            if self._open > self._settings.max_connections:
                reply = self._refuse(peer, "too many connections")
            else:
                reply = await self._answer(reader, peer, local)
            writer.write(reply)
            await writer.drain()
        except OSError:
            pass  # the client went away; there is no one to answer
        finally:
            self._open -= 1
            writer.close()

    async def _answer(
        self, reader: asyncio.StreamReader, peer: tuple[str, int], local: tuple[str, int]
    ) -> bytes:
        try:
            registration = await self._read(reader)
        except PortwayError as exc:
            return self._refuse(peer, exc.message)
        try:
            tool = await self._identify(registration, peer, local)
        except PortwayError as exc:
            log.warning("registration from %s:%d refused: %s", *peer[:2], exc.message)
            self._count("unidentified")
            return b"fail: " + exc.message.encode("ascii", "replace") + b"\n"
        try:
            if registration.command == UNREGISTER:
                await asyncio.to_thread(self._registrar.unregister, tool, registration.route)
            else:
                assert registration.destination is not None  # parse() gives one to register
                route = ToolRoute(
                    tool=tool,
                    pattern=registration.route,
                    destination=registration.destination,
                    canonical=registration.canonical,
                )
                await asyncio.to_thread(self._registrar.register, route)
        except PortwayError as exc:
            return self._refuse(peer, f"tool {tool}: {exc.message}")
        log.info("%s %s %r for tool %s", registration.command, peer[0], registration.route, tool)
        self._count("applied")
        return OK

    async def _read(self, reader: asyncio.StreamReader) -> Registration:
        data = b""
        try:
            async with asyncio.timeout(self._settings.idle_timeout):
                while (registration := parse(data)) is None:
                    chunk = await reader.read(MAX_LINE)
                    if not chunk:
                        raise PortwayError("connection closed before the request was complete")
                    data += chunk
        except TimeoutError:
            idle = self._settings.idle_timeout
            raise PortwayError(f"no complete request within {idle:g} s") from None
        return registration

    async def _identify(
        self, registration: Registration, peer: tuple[str, int], local: tuple[str, int]
    ) -> str:
        if registration.token is not None:
            return await asyncio.to_thread(self._registrar.tool_for_token, registration.token)
        settings = self._settings
        user = await lookup(
            peer[0],
            peer[1],
            local[1],
            ident_port=settings.ident_port,
            timeout=settings.ident_timeout,
        )
        prefix = settings.user_prefix + "."
        tool = user[len(prefix) :] if user.startswith(prefix) else ""
        if not tool:
            raise IdentError(f"user {user!r} is not a tool account ({prefix}<tool>)")
        return tool

    def _refuse(self, peer: tuple[str, int], reason: str) -> bytes:
        log.warning("registration from %s:%d refused: %s", peer[0], peer[1], reason)
        self._count("refused")
        return FAIL
