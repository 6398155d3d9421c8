"""The pieces of HAProxy configuration and Runtime API syntax that tenant-derived text
passes through.

HAProxy splits a configuration line into words like a shell does: whitespace separates
them, ``#`` starts a comment, ``\\`` escapes the next character, ``"..."`` expands
environment variables (``$NAME``) and ``'...'`` takes everything literally up to the next
``'``. So the rules are:

- every tenant string that reaches a configuration word is wrapped by :func:`quote` in
  single quotes (no expansion, no escapes, ``#`` and spaces literal); a ``'`` inside
  the value closes the quotes, adds an escaped ``\\'`` and reopens them, as a shell
  would; control characters and anything outside printable ASCII are refused;
- names HAProxy knows things by (backends, servers, files) are derived from a hash of
  the proxy id (:func:`backend_name`), never from the raw string;
- map keys and Runtime API arguments cannot be quoted at all (a map line and a CLI
  command are split on whitespace, and the CLI also on ``;``): :func:`word` lets
  through only ``[A-Za-z0-9*._:-]``, which hostnames and IP addresses fit;
- header and cookie names that reach a sample fetch (``hdr(<name>)``) are held to
  :func:`fetch_name`'s ``[A-Za-z0-9_.-]``;
- comments carry tenant text only JSON-escaped on one line (``nginx_syntax.comment``).

The strings were already held to their grammars when the snapshot was built; this is the
second wall, so a proxy built without the API still cannot change the file's structure.
"""

from __future__ import annotations

import re
from typing import Final

from portway.drivers.nginx_syntax import comment, comment_text, digest
from portway.errors import ConfigError

__all__ = ["backend_name", "comment", "fetch_name", "quote", "word"]

_PRINTABLE: Final = re.compile(r"[\x20-\x7e]*\Z")
_WORD: Final = re.compile(r"[A-Za-z0-9*._:-]+\Z")
_FETCH: Final = re.compile(r"[A-Za-z0-9_.-]+\Z")


def quote(value: str) -> str:
    """``value`` as one HAProxy configuration word that reads back as exactly ``value``."""
    if not isinstance(value, str) or not _PRINTABLE.match(value):
        raise ConfigError(f"{comment_text(value)} holds characters HAProxy cannot be given")
    return "'" + value.replace("'", "'\\''") + "'"


def word(value: str) -> str:
    """``value`` as a map key or Runtime API argument, which cannot be quoted."""
    if not isinstance(value, str) or not _WORD.match(value):
        raise ConfigError(f"{comment_text(value)} cannot be a map key or Runtime API word")
    return value


def fetch_name(value: str) -> str:
    """A header or cookie name inside a sample fetch's parentheses."""
    if not isinstance(value, str) or not _FETCH.match(value):
        raise ConfigError(f"{comment_text(value)} cannot be named in an HAProxy sample fetch")
    return value


def backend_name(proxy_id: str) -> str:
    return "pw_" + digest(proxy_id, 20)
