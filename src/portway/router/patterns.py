"""Tenant-supplied route patterns (Toolforge's ``<route>``), compiled for linear time.

A tool registers a regular expression for the paths it serves. Python's ``re`` backtracks,
so a pattern such as ``(a*)*b`` would let one tenant stall a data-plane worker for every
request; RE2 matches in time linear in the path and refuses the constructs that need
backtracking (back-references, look-around), so a pattern either compiles into something
safe or is refused at registration.

Matching follows the original proxy (nginx ``ngx.re.match`` without the anchor flag): the
pattern is **searched** in the path, so ``/foo.*`` matches ``/foo/x`` and also
``/x/foo``; a tool that wants an anchored route writes ``^/foo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import re2

from portway.errors import ValidationError

MAX_PATTERN: Final = 1024
# RE2 bounds the memory of one compiled program; 1 MiB is ample for route patterns and
# keeps 10 000 tools' patterns small.
_MAX_MEM: Final = 1 << 20


def _options() -> Any:
    options = re2.Options()
    options.max_mem = _MAX_MEM
    options.log_errors = False  # a refused pattern is the tenant's error, not ours to log
    return options


_OPTIONS: Final = _options()


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled route pattern; ``text`` is exactly what the tenant sent."""

    text: str
    _compiled: Any = field(repr=False, compare=False)

    def search(self, path: str) -> bool:
        return self._compiled.search(path) is not None


def compile_pattern(text: str, *, field: str = "route") -> Pattern:
    """``text`` compiled by RE2, or ValidationError naming ``field``."""
    if isinstance(text, str):
        return _checked(text, field)
    raise ValidationError(f"{field} must be a non-empty pattern", field=field)


# Most tools register the same few patterns (".*"): every snapshot build and every
# screening checks and compiles each distinct text once, and 10 000 tools share one
# program. RE2 programs are immutable and thread-safe; refusals raise, so they are
# never cached.
@lru_cache(maxsize=4096)
def _checked(text: str, field: str) -> Pattern:
    if not isinstance(text, str) or not text:
        raise ValidationError(f"{field} must be a non-empty pattern", field=field)
    if len(text) > MAX_PATTERN:
        raise ValidationError(f"{field} is longer than {MAX_PATTERN} characters", field=field)
    if not text.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValidationError(f"{field} must be printable ASCII", field=field)
    try:
        compiled = re2.compile(text, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        message = f"{field} {text[:64]!r} is not a valid pattern: {reason}"
        raise ValidationError(message, field=field) from None
    return Pattern(text=text, _compiled=compiled)
