"""RFC grammars of the strings Portway writes into HTTP, as pure predicates.

Tenants choose some of the text Portway puts on the wire (a cookie name in ``Set-Cookie``,
a probe's method, target and ``Host``). A CR or LF in any of them ends a line early and
lets the tenant write its own header lines, responses or requests, so each such string
is checked against the production it is written as:

    token        RFC 9110 §5.6.2   1*tchar
                 tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
                         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    field-value  RFC 9110 §5.5     *field-content: VCHAR / obs-text, with SP / HTAB only
                                   between them (no leading or trailing whitespace); never
                                   CR, LF, NUL or another control
    origin-form  RFC 9112 §3.2.1   absolute-path [ "?" query ], RFC 3986 §3.3/§3.4:
                                   absolute-path = 1*( "/" segment ), segment = *pchar,
                                   pchar = unreserved / pct-encoded / sub-delims / ":" / "@",
                                   query = *( pchar / "/" / "?" )
    cookie-name  RFC 6265 §4.1.1   token

Strings are Python ``str``; obs-text (%x80-FF) is the code points Portway's latin-1
encoding writes as those octets, of which only U+00A0 to U+00FF are accepted (the rest
are C1 controls). Every string accepted here
contains no CR, LF, NUL or other control character (property-tested).
"""

from __future__ import annotations

import re

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(f"[{_TCHAR}]+")

# VCHAR = %x21-7E and obs-text, SP / HTAB only between them. Of obs-text only U+00A0-U+00FF:
# U+0080-U+009F are C1 controls as text, and U+0085 (NEL) ends a line for some parsers
# (Python's str.splitlines among them).
_VISIBLE = r"\x21-\x7e\xa0-\xff"
_FIELD_VALUE = re.compile(f"(?:[{_VISIBLE}](?:[\t {_VISIBLE}]*[{_VISIBLE}])?)?")

_UNRESERVED_SUB_DELIMS = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCT = "%[0-9A-Fa-f]{2}"
# 1*( "/" segment ) is "/" followed by any run of pchar and "/".
_PATH = f"/(?:[{_UNRESERVED_SUB_DELIMS}:@/]|{_PCT})*"
_QUERY = f"(?:[{_UNRESERVED_SUB_DELIMS}:@/?]|{_PCT})*"
_ORIGIN_FORM = re.compile(f"{_PATH}(?:\\?{_QUERY})?")


def is_token(value: str) -> bool:
    """RFC 9110 §5.6.2 ``token``: a method, a header name, a cookie name."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def is_field_value(value: str) -> bool:
    """RFC 9110 §5.5 ``field-value`` as Portway writes it (no surrounding whitespace)."""
    return isinstance(value, str) and _FIELD_VALUE.fullmatch(value) is not None


def is_origin_form(value: str) -> bool:
    """RFC 9112 §3.2.1 ``origin-form``: the request target of a probe (``/path?query``)."""
    return isinstance(value, str) and _ORIGIN_FORM.fullmatch(value) is not None


def is_cookie_name(value: str) -> bool:
    """RFC 6265 §4.1.1 ``cookie-name``, which is a ``token``."""
    return is_token(value)
