"""Expected status codes of an HTTP health check: ``"200-399"``, ``"200,204"``, ``"2xx"``."""

from __future__ import annotations

from portway.errors import ValidationError

# A few dozen ranges say anything worth saying; the bound keeps parsing (which also runs on
# the event loop, once per probe task) to microseconds whatever a tenant sends.
MAX_EXPECTED_CODES = 256
LOWEST, HIGHEST = 100, 599


def _bounds(part: str, field: str) -> tuple[int, int]:
    """``part`` ("204", "200-399" or "2xx") as an inclusive range."""
    if len(part) == 3 and part[0].isdigit() and part[1:].lower() == "xx":
        first = int(part[0]) * 100
        low, high = first, first + 99
    elif "-" in part:
        a, _, b = part.partition("-")
        if not (_is_code(a) and _is_code(b)):
            raise ValidationError(f"{field}: bad range {part!r}", field=field)
        low, high = int(a), int(b)
    elif _is_code(part):
        low = high = int(part)
    else:
        raise ValidationError(f"{field}: bad code {part!r}", field=field)
    if not LOWEST <= low <= high <= HIGHEST:
        raise ValidationError(f"{field}: {part!r} is outside 100-599", field=field)
    return low, high


def _is_code(text: str) -> bool:
    # ASCII digits only ("²" is a digit to str.isdigit), and never a huge int() to parse.
    return 1 <= len(text) <= 3 and text.isascii() and text.isdigit()


def parse_expected_codes(
    text: str, *, field: str = "health_check.expected_codes"
) -> frozenset[int]:
    """The set of status codes ``text`` accepts, or ValidationError naming ``field``.

    Linear in ``len(text)``, which is at most MAX_EXPECTED_CODES: every range marks a
    slice of one fixed 500-slot table, so overlapping ranges cost nothing extra."""
    if len(text) > MAX_EXPECTED_CODES:
        raise ValidationError(
            f"{field} is longer than {MAX_EXPECTED_CODES} characters", field=field
        )
    marked = bytearray(HIGHEST - LOWEST + 1)
    for part in text.replace(" ", "").split(","):
        if part:
            low, high = _bounds(part, field)
            marked[low - LOWEST : high - LOWEST + 1] = b"\x01" * (high - low + 1)
    codes = frozenset(LOWEST + i for i, flag in enumerate(marked) if flag)
    if not codes:
        raise ValidationError(f"{field} is empty", field=field)
    return codes
