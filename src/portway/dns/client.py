"""The thin dnspython shell: send an UPDATE, read a name's records, transfer a zone.

Everything goes over TCP to the one authoritative server, signed with the TSIG key.
dnspython's and the socket's errors become ``DnsError`` here: 503 when the server cannot
be reached or does not answer in time, 502 when it answers with a refusal. The
prerequisite failures (YXDOMAIN, NXRRSET, ...) are returned, not raised: they are the
answers the callers branch on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
import dns.xfr
import dns.zone

from portway.dns.config import DnsConfig
from portway.dns.plan import Records, RRset
from portway.errors import DnsError

T = TypeVar("T")

# What an UPDATE's prerequisites may answer (RFC 2136 §2.2): the caller decides.
PREREQUISITE_FAILED = frozenset(
    {dns.rcode.YXDOMAIN, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN, dns.rcode.NXRRSET}
)
# The types read when a server answers ANY minimally (RFC 8482).
_SINGLE_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX", "SRV", "NS", "CAA")


class DnsClient:
    """One authoritative server, one TSIG key."""

    def __init__(self, config: DnsConfig) -> None:
        self.where = str(config.server)
        self._host, self._port = config.server.host, config.server.port
        self._timeout = config.timeout
        self.key = dns.tsig.Key(config.key_name, config.secret, config.algorithm)

    def update(self, message: dns.update.UpdateMessage) -> dns.rcode.Rcode:
        """Send ``message``: NOERROR, or the prerequisite failure the server answered."""
        zone = message.zone[0].name.to_text(omit_final_dot=True) if message.zone else "?"
        answer = self._call(lambda: self._tcp(message), f"the update of zone {zone}")
        rcode = answer.rcode()
        if rcode == dns.rcode.NOERROR or rcode in PREREQUISITE_FAILED:
            return rcode
        raise DnsError(
            f"DNS server {self.where} refused the update of zone {zone}: "
            f"{dns.rcode.to_text(rcode)}{_hint(rcode)}",
            status=502,
        )

    def records(self, hostname: str) -> dict[str, RRset]:
        """The records at exactly ``hostname`` as the server answers them (a name that
        does not exist may get answers synthesized from a wildcard; callers that must
        know use an UPDATE prerequisite)."""
        found = self._query(hostname, "ANY")
        if found is None or set(found) <= {"HINFO"}:  # RFC 8482's minimal answer
            found = {}
            for rdtype in _SINGLE_TYPES:
                found |= self._query(hostname, rdtype) or {}
        return found

    def transfer(self, zone: str) -> dict[str, Records]:
        """Every name of ``zone`` (AXFR): the zone's own names, no wildcard answers."""
        origin = dns.name.from_text(zone)
        target = dns.zone.Zone(origin, relativize=False)
        query, _ = dns.xfr.make_query(target)
        query.use_tsig(self.key)
        self._call(
            lambda: dns.query.inbound_xfr(
                self._host,
                target,
                query,
                port=self._port,
                timeout=self._timeout,
                lifetime=self._timeout * 6,
            ),
            f"the transfer of zone {zone}",
        )
        out: dict[str, Records] = {}
        for name, node in target.nodes.items():
            rrsets = {}
            for rdataset in node.rdatasets:
                rrset = _rrset(rdataset)
                rrsets[rrset.rdtype] = rrset
            out[_text(name)] = rrsets
        return out

    def _query(self, hostname: str, rdtype: str) -> dict[str, RRset] | None:
        """The answer's RRsets owned by ``hostname`` itself; None for NXDOMAIN."""
        query = dns.message.make_query(hostname, rdtype)
        query.use_tsig(self.key)
        answer = self._call(lambda: self._tcp(query), f"the query for {hostname} {rdtype}")
        rcode = answer.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return None
        if rcode != dns.rcode.NOERROR:
            raise DnsError(
                f"DNS server {self.where} refused the query for {hostname} {rdtype}: "
                f"{dns.rcode.to_text(rcode)}",
                status=502,
            )
        owner = dns.name.from_text(hostname)
        out = {}
        for rrset in answer.answer:
            if rrset.name == owner and rrset.rdtype != dns.rdatatype.RRSIG:
                converted = _rrset(rrset)
                out[converted.rdtype] = converted
        return out

    def _tcp(self, message: dns.message.Message) -> dns.message.Message:
        return dns.query.tcp(message, self._host, port=self._port, timeout=self._timeout)

    def _call(self, send: Callable[[], T], what: str) -> T:
        """Run ``send``, translating every failure into a DnsError naming ``what``."""
        try:
            return send()
        except dns.exception.Timeout:
            raise DnsError(
                f"DNS server {self.where} did not answer {what} within {self._timeout:g} s"
            ) from None
        except dns.tsig.PeerError as exc:
            raise DnsError(
                f"DNS server {self.where} refused the TSIG key {self.key.name.to_text(True)!r} "
                f"for {what}: {exc}",
                status=502,
            ) from None
        except dns.xfr.TransferError as exc:
            raise DnsError(
                f"DNS server {self.where} refused {what}: {dns.rcode.to_text(exc.rcode)} "
                "(allow-transfer must name Portway's key)",
                status=502,
            ) from None
        except (OSError, EOFError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise DnsError(f"cannot reach DNS server {self.where} for {what}: {reason}") from None
        except dns.exception.DNSException as exc:
            raise DnsError(
                f"DNS server {self.where} sent a bad answer to {what}: {exc}", status=502
            ) from None


def _hint(rcode: dns.rcode.Rcode) -> str:
    if rcode == dns.rcode.REFUSED:
        return " (the zone's update-policy must grant Portway's key)"
    if rcode == dns.rcode.NOTAUTH:
        return " (the server is not authoritative for the zone, or rejected the key)"
    return ""


def _rrset(rdataset: dns.rdataset.Rdataset | dns.rrset.RRset) -> RRset:
    return RRset(
        dns.rdatatype.to_text(rdataset.rdtype),
        rdataset.ttl,
        frozenset(rdata.to_text() for rdata in rdataset),
    )


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()
