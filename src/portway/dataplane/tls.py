"""TLS for the HTTPS listener: one ``ssl.SSLContext`` per certificate, picked by SNI.

Policy (Mozilla "intermediate"): TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key
exchange with AES-GCM or ChaCha20-Poly1305; the client's cipher order wins (every
offered suite is strong, and clients know whether they have AES hardware); no
compression, no renegotiation; ALPN offers ``http/1.1`` only.

Handshakes stay cheap: a context is built once per certificate id and fingerprint, the
first time a handshake needs it, and reused until the certificate leaves the snapshot.
Session tickets stay on. Once the control process sends the tier's shared ticket keys
(``set_ticket_keys``; docs/ha.md), every context of this process seals and opens tickets
with them, so a session resumes on any worker of any node; until then, or if OpenSSL
cannot be reached through ctypes, OpenSSL's own per-process keys are used. OpenSSL reads
the ticket keys of the listener context (the session context) even after the SNI
callback switches contexts; every context gets the keys all the same, so that nothing
depends on that detail.

The SNI callback records what it chose on the ``SSLObject`` (attribute ``portway_tls``),
where the client connection reads it to enforce the Host/SNI match (421).

A certificate is chosen per hostname, by who answers for it (issue 7): for a name some
project routes (exactly, or through its wildcard) only that project's certificates are
candidates, so project A's ``*.example.org`` (or a certificate of A that names B's host)
is never served for B's ``app.example.org``; B's own certificate is, and without one the
default is. A host several projects share by path gets the default certificate. A name
nobody routes may get any certificate that names it (its requests get 404 anyway).
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from portway.errors import ConfigError
from portway.model import Certificate
from portway.router import RouteTable
from portway.tls.certs import covers
from portway.tls.groups import restrict_groups
from portway.tls.openssl import TicketKeyInstaller
from portway.tls.policy import TLS12_CIPHERS
from portway.tls.sni import SniTable
from portway.tls.tickets import TicketKeys

log = logging.getLogger("portway.tls")


class Handshake:
    """What the SNI callback chose for one connection."""

    __slots__ = ("_contexts", "entry", "names", "server_name")

    def __init__(
        self, server_name: str | None, entry: _Entry | None, contexts: TlsContexts | None
    ) -> None:
        self.server_name = server_name  # normalised SNI, None when the client sent none
        self.entry = entry  # the certificate that was served
        self.names = entry.names if entry is not None else ()
        self._contexts = contexts

    def allows(self, host: str) -> bool:
        """May a request for ``host`` use this connection? (RFC 9110 §7.4: 421 if not).

        Its own SNI name may; another name only if the certificate covers it and a
        handshake for that name would get this very certificate now, so a request for
        project B's host never rides on a connection that got project A's certificate.
        """
        sni = self.server_name
        if sni is None or host == sni:
            return True
        contexts = self._contexts
        return (
            covers(self.names, host)
            and contexts is not None
            and contexts.entry_for(host) is self.entry
        )


NO_SNI: Final = Handshake(None, None, None)
_CHOSEN_LIMIT: Final = 10_000


def new_context() -> ssl.SSLContext:
    """A server context with Portway's TLS policy and no certificate yet."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE  # Python sets it; Mozilla says off
    ctx.set_alpn_protocols(["http/1.1"])
    restrict_groups(ctx)  # X25519, P-256, P-384 only (Mozilla intermediate)
    return ctx


@contextlib.contextmanager
def _pem_file(data: str) -> Iterator[str]:
    """A path to ``data`` for ``load_cert_chain`` (which only takes paths): an anonymous
    in-memory file where the OS has them, so private keys never touch a disk."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("portway-pem", os.MFD_CLOEXEC)
        try:
            os.write(fd, data.encode())
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:  # mode 0600
        f.write(data)
        f.flush()
        yield f.name


def context_for(chain_pem: str, key_pem: str) -> ssl.SSLContext:
    ctx = new_context()
    with _pem_file(chain_pem) as chain, _pem_file(key_pem) as key:
        ctx.load_cert_chain(chain, key)
    return ctx


class _Entry:
    """One certificate; its context is built on the first handshake that needs it."""

    __slots__ = ("cert", "context", "names")

    def __init__(self, cert: Certificate) -> None:
        self.cert = cert
        self.names = cert.names
        self.context: ssl.SSLContext | None = None


class TlsContexts:
    """The certificates of one data plane and the SNI callback that chooses among them."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._applied: Mapping[str, Certificate] | None = None
        self._default: _Entry | None = None
        self._listener: ssl.SSLContext | None = None
        self._table: SniTable[_Entry] | None = None
        self._by_project: dict[str, SniTable[_Entry]] = {}
        self._routes = RouteTable.build(())
        # Raw SNI → (context, Handshake), as chosen under the current table.
        self._chosen: dict[str | None, tuple[ssl.SSLContext, Handshake]] = {}
        self._tickets = TicketKeyInstaller()
        self._sharing = False  # the shared ticket keys are installed (or being installed)

    def set_ticket_keys(self, keys: TicketKeys) -> None:
        """Seal and open session tickets with ``keys`` from now on, in every context."""
        self._tickets.keys = keys
        if self._sharing or not len(keys):
            return  # installed already (the callback reads the new keys), or nothing to share
        self._sharing = True
        contexts = [e.context for e in self._entries.values() if e.context is not None]
        if self._listener is not None:
            contexts.append(self._listener)
        for ctx in contexts:
            self._share_tickets(ctx)

    def _share_tickets(self, ctx: ssl.SSLContext) -> ssl.SSLContext:
        if self._sharing and not self._tickets.install(ctx):
            log.error("cannot install the shared TLS ticket keys: per-process keys used")
        return ctx

    def load_default(self, chain_path: Path, key_path: Path) -> None:
        """The certificate for names no uploaded certificate covers (and no SNI)."""
        from portway.tls.certs import inspect_certificate

        chain, key = chain_path.read_text(), key_path.read_text()
        try:
            info = inspect_certificate(chain, key)
        except Exception as exc:
            raise ConfigError(f"default certificate {chain_path}: {exc}") from exc
        cert = Certificate(id="", project="", name="default", chain_pem=chain, key_pem=key)
        self._default = entry = _Entry(cert)
        entry.names = info.names
        entry.context = self._listener = self._share_tickets(context_for(chain, key))
        self._listener.sni_callback = self._on_sni
        self._rebuild()

    def listener_context(self) -> ssl.SSLContext:
        if self._listener is None:
            raise ConfigError("HTTPS needs a default certificate (load_default first)")
        return self._listener

    def apply(self, certificates: Mapping[str, Certificate], routes: RouteTable) -> None:
        """Follow a snapshot's certificates and routes (who answers for which name);
        certificates are reloaded only when their mapping is another object."""
        if routes is not self._routes:
            self._routes = routes
            self._chosen = {}  # owners may have changed; the cache refills on handshakes
        if certificates is self._applied:
            return
        self._applied = certificates
        keys = {(c.id, c.fingerprint): c for c in certificates.values()}
        self._entries = {k: self._entries.get(k) or _Entry(c) for k, c in keys.items()}
        self._rebuild()

    def _rebuild(self) -> None:
        self._chosen = {}
        if self._default is None:
            return
        entries = sorted(self._entries.values(), key=lambda e: e.cert.id)
        self._table = SniTable(((e.names, e) for e in entries), self._default)
        by_project: dict[str, list[_Entry]] = {}
        for e in entries:
            by_project.setdefault(e.cert.project, []).append(e)
        self._by_project = {
            project: SniTable(((e.names, e) for e in group), self._default)
            for project, group in by_project.items()
        }

    def _context(self, entry: _Entry) -> ssl.SSLContext | None:
        if entry.context is None:
            try:
                ctx = context_for(entry.cert.chain_pem, entry.cert.key_pem)
                entry.context = self._share_tickets(ctx)
            except (ssl.SSLError, OSError, ValueError) as exc:
                log.error("certificate %s cannot be used: %s", entry.cert.id, exc)
                return None
        return entry.context

    def _on_sni(self, sslobj: Any, server_name: str | None, listener: ssl.SSLContext) -> None:
        # Clients repeat their server names: one dict lookup instead of normalising,
        # looking up and allocating a Handshake on every handshake.
        chosen = self._chosen.get(server_name)
        if chosen is None:
            chosen = self._choose(server_name)
        ctx, handshake = chosen
        if ctx is not listener:
            sslobj.context = ctx
        sslobj.portway_tls = handshake

    def _choose(self, server_name: str | None) -> tuple[ssl.SSLContext, Handshake]:
        table, default = self._table, self._default
        assert table is not None and default is not None and default.context is not None
        name = server_name.lower().rstrip(".") if server_name else None
        entry = self._pick(name, table, default)
        ctx = self._context(entry)
        if ctx is None:
            entry, ctx = default, default.context
        chosen = (ctx, Handshake(name, entry, self))
        if len(self._chosen) >= _CHOSEN_LIMIT:
            self._chosen.clear()  # names from a scan or an attack: start over, stay bounded
        self._chosen[server_name] = chosen
        return chosen

    def entry_for(self, name: str) -> _Entry | None:
        """The certificate a handshake for ``name`` (normalised) would get now."""
        table, default = self._table, self._default
        return None if table is None or default is None else self._pick(name, table, default)

    def _pick(self, name: str | None, table: SniTable[_Entry], default: _Entry) -> _Entry:
        if not name:
            return default
        answering = self._routes.answering(name)
        if answering is None:
            return table.lookup(name)  # nobody routes it: any certificate naming it
        if answering.owner is None:
            return default  # a host shared by several projects: the operator's certificate
        own = self._by_project.get(answering.owner)
        return default if own is None else own.lookup(name)


def handshake_of(transport: Any) -> Handshake | None:
    """The Handshake of a TLS transport, None for plain TCP."""
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None:
        return None
    found: Handshake = getattr(sslobj, "portway_tls", NO_SNI)
    return found
