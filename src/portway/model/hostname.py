"""Hostname and path-prefix rules shared by the API, the sources and the router.

The label rule is the dynamicproxy one (compat.md §1): ``(?!-)[A-Za-z0-9-]{1,63}(?<!-)``,
at least one dot, one trailing dot stripped, an optional leading ``*.`` wildcard.

A hostname is a name, never an address: the last label may not be a number (all digits,
or ``0x`` and hex digits). RFC 1123 §2.1 keeps the top-level label alphabetic so that
names and dotted-decimal addresses cannot be confused, and the WHATWG URL host parser
reads any host whose last label is such a number as IPv4 (``1.2`` is 1.0.0.2), so a
browser would never send it as a name. IPv6 forms never pass the label rule (``:``,
``[``).
"""

from __future__ import annotations

import re

from portway.errors import ValidationError

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_NUMBER = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)\Z")  # WHATWG "ends in a number"
MAX_HOSTNAME = 253
# Characters allowed in a path prefix: RFC 3986 pchar plus "/". No "%" so that a prefix
# cannot smuggle an encoded "/" or ".." past the segment-aware matcher.
_PREFIX_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*\Z")


def normalize_hostname(value: str, *, field: str = "hostname", wildcard_ok: bool = True) -> str:
    """Return ``value`` lower-cased without its trailing dot, or raise ValidationError."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    name = value.lower()
    if name.endswith("."):
        name = name[:-1]
    if len(name) > MAX_HOSTNAME:
        raise ValidationError(f"{field} is longer than {MAX_HOSTNAME} characters", field=field)
    labels = name.split(".")
    if labels[0] == "*":
        if not wildcard_ok:
            raise ValidationError(f"{field} may not be a wildcard here", field=field)
        labels = labels[1:]
    if len(labels) < 2:
        raise ValidationError(f"{field} {value!r} must contain a dot", field=field)
    for label in labels:
        if not _LABEL.match(label):
            raise ValidationError(f"{field} {value!r} has an invalid label {label!r}", field=field)
    if _NUMBER.match(labels[-1]):
        raise ValidationError(
            f"{field} {value!r} is an IP address, not a name (its last label is numeric)",
            field=field,
        )
    return name


def normalize_path_prefix(value: str, *, field: str = "path_prefix") -> str:
    """Return the canonical prefix: leading "/", no trailing "/" (except the root)."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValidationError(f"{field} must start with '/'", field=field)
    if len(value) > 1024:
        raise ValidationError(f"{field} is longer than 1024 characters", field=field)
    if not _PREFIX_CHARS.match(value):
        raise ValidationError(
            f"{field} {value!r} contains characters outside RFC 3986", field=field
        )
    segments = [s for s in value.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise ValidationError(f"{field} may not contain '.' or '..' segments", field=field)
    return "/" + "/".join(segments)


def in_zone(hostname: str, zone: str) -> bool:
    """True when ``hostname`` (normalised, possibly ``*.x``) is ``zone`` itself or one
    label under it, as in dynamicproxy (compat.md §1): a zone hands out the names of its
    own level; a deeper name needs a zone of its own (``*.zone`` is one label under)."""
    return hostname == zone or hostname.partition(".")[2] == zone
