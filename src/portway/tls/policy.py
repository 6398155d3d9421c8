"""Portway's TLS policy, shared by every data plane (the built-in one's contexts and the
nginx driver's ``ssl_ciphers``), so both serve the same profile."""

from __future__ import annotations

from typing import Final

# Mozilla intermediate (v5.7), TLS 1.2 part, without the DHE suites (no DH parameters
# are configured, so they could never be chosen). TLS 1.3 suites are OpenSSL's defaults,
# which are exactly Mozilla's.
TLS12_CIPHERS: Final = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
