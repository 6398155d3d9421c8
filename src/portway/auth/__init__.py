"""Tokens from outside Portway: the ``TokenValidator`` seam and Keystone's tokens.

``auth.tokens`` holds the pure parts (the seam, identity, role mapping, cache, chain),
``auth.keystone`` the httpx client (``KeystoneTokens``), ``auth.config`` the
``keystone_*`` settings. Nothing is imported here, so reading the settings table does not
load the HTTP client.
"""
