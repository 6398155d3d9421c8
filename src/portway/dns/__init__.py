"""DNS records for the hostnames Portway serves (RFC 2136 with TSIG, via dnspython).

``plan`` decides (pure), ``updates`` builds the messages, ``client`` does the I/O,
``records`` is the ``DnsRecords`` seam, ``guard`` undoes changes whose commit failed.
"""

from portway.dns.config import DnsConfig, dns_config
from portway.dns.guard import DnsChanges, dns_changes
from portway.dns.records import CheckReport, DnsRecords, Done, NoDns, Rfc2136Records

__all__ = [
    "CheckReport",
    "DnsChanges",
    "DnsConfig",
    "DnsRecords",
    "Done",
    "NoDns",
    "Rfc2136Records",
    "dns_changes",
    "dns_config",
]
