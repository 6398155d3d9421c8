"""The defaults of the ``keystone_*`` settings, defined once: the settings table,
``ServeConfig`` and ``KeystoneConfig`` all take them from here (no imports, so each may)."""

PROJECT = "service"
DOMAIN = "Default"  # the service user's and its project's
CACHE_TTL = 30.0
CACHE_SIZE = 1024
TIMEOUT = 5.0
