"""Expected status codes of an HTTP health check: ``"200-399"``, ``"200,204"``, ``"2xx"``."""

from __future__ import annotations

from portway.errors import ValidationError


def parse_expected_codes(
    text: str, *, field: str = "health_check.expected_codes"
) -> frozenset[int]:
    """The set of status codes ``text`` accepts, or ValidationError naming ``field``."""
    codes: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if len(part) == 3 and part[0].isdigit() and part[1:].lower() == "xx":
            first = int(part[0]) * 100
            low, high = first, first + 99
        elif "-" in part:
            a, _, b = part.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise ValidationError(f"{field}: bad range {part!r}", field=field)
            low, high = int(a), int(b)
        elif part.isdigit():
            low = high = int(part)
        else:
            raise ValidationError(f"{field}: bad code {part!r}", field=field)
        if not 100 <= low <= high <= 599:
            raise ValidationError(f"{field}: {part!r} is outside 100-599", field=field)
        codes.update(range(low, high + 1))
    if not codes:
        raise ValidationError(f"{field} is empty", field=field)
    return frozenset(codes)
