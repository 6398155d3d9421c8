"""The pieces of nginx configuration syntax that tenant-derived text passes through.

nginx reads its configuration as tokens separated by whitespace, ``;``, ``{`` and ``}``;
a token in double quotes may hold any of those, with ``\\"`` and ``\\\\`` as its only
escapes that matter here. There is no escape for ``$`` (directives that take variables
expand it anywhere in a token), and a CR or LF inside a quoted token would survive into
the value. So the rules are:

- every tenant string that reaches a directive is quoted with :func:`quote`, which
  refuses control characters and anything outside printable ASCII, and escapes ``\\``
  and ``"``;
- a tenant string never reaches a directive that expands variables (``$``): those only
  ever see names Portway derives itself (:func:`var_suffix` refuses what it cannot
  express), so ``quote`` need not, and cannot, escape ``$``;
- file and upstream names are derived from a hash of the proxy id (:func:`file_name`),
  never from the raw string;
- comments carry tenant text only JSON-escaped on one line (:func:`comment`).

The strings were already held to their grammars when the snapshot was built; this is the
second wall, so a proxy built without the API still cannot change the file's structure.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Final

from portway.errors import ConfigError

_PRINTABLE: Final = re.compile(r"[\x20-\x7e]*\Z")
_SLUG_DROP: Final = re.compile(r"[^a-z0-9.-]+")
_VAR: Final = re.compile(r"[A-Za-z0-9_]+\Z")


def quote(value: str) -> str:
    """``value`` as one double-quoted nginx token that reads back as exactly ``value``."""
    if not isinstance(value, str) or not _PRINTABLE.match(value):
        raise ConfigError(f"{comment_text(value)} holds characters nginx cannot be given")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def comment_text(value: object) -> str:
    """Any value as one line of ASCII: JSON-escaped, so it holds no CR, LF or control."""
    return json.dumps(str(value), ensure_ascii=True)


def comment(text: str) -> str:
    return "# " + comment_text(text)[1:-1] + "\n"


def digest(value: str, length: int = 16) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def file_name(kind: str, readable: str, key: str) -> str:
    """A file name of ``[a-z0-9.-]`` only: a readable slug of ``readable`` (which may be
    anything: it is cut down to safe characters) and a hash of ``key`` that makes it
    unique. ``kind`` is Portway's own word (``proxy``, ``host``, ``cert``)."""
    slug = _SLUG_DROP.sub("-", readable.lower()).strip(".-")[:60] or kind
    return f"{slug}.{digest(key, 12)}"


def upstream_name(proxy_id: str) -> str:
    return "portway_" + digest(proxy_id, 20)


def var_suffix(name: str) -> str:
    """A header or cookie name as the tail of an nginx variable (``$http_x_user``):
    nginx variable names are letters, digits and ``_`` only; a name that needs more
    cannot be expressed and is refused."""
    if not _VAR.match(name):
        raise ConfigError(f"{comment_text(name)} cannot be named in an nginx variable")
    return name
