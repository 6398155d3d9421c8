"""The defaults of the ``dns_*`` settings, defined once: the settings table,
``ServeConfig`` and ``DnsConfig`` all take them from here (no imports, so each may)."""

ALGORITHM = "hmac-sha256"
TTL = 300
OWNER = "portway"
TIMEOUT = 5.0
CHECK_INTERVAL = 300.0  # seconds between the control process's checks; 0: none
