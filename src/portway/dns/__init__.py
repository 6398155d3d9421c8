"""DNS records for the hostnames Portway serves (RFC 2136 with TSIG, via dnspython).

``dns.plan`` decides (pure), ``dns.updates`` builds the messages, ``dns.client`` does the
I/O, ``dns.records`` is the ``DnsRecords`` seam (``Rfc2136Records``, ``NoDns``),
``dns.guard`` undoes changes whose commit failed, ``dns.config`` reads the ``dns_*``
settings. Nothing is imported here, so reading the settings table does not load dnspython.
"""
