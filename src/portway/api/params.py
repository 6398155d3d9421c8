"""Path and query parameters: each declared once, with its bounds, and both checked by the
endpoint and described in the OpenAPI document from that one declaration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portway.api.schemas import HOSTNAME_GRAMMAR
from portway.errors import MalformedError, ValidationError
from portway.model.hostname import MAX_HOSTNAME
from portway.service import MAX_CHANGES
from portway.store.reader import MAX_REVISION

# Path segments name objects by id, name, hostname or "address:port"; nothing longer
# can exist, so a longer one is refused before any lookup.
PATH_LIMITS: Mapping[str, int] = {
    "project": 64,
    "name": 64,
    "zone": MAX_HOSTNAME + 1,
    "token": 64,
    "proxy": MAX_HOSTNAME + 1,  # an id, or a hostname with its trailing dot
    "backend": MAX_HOSTNAME + 8,  # an id, or address:port ("[v6]:port" is shorter)
    "certificate": 255,
}


@dataclass(frozen=True, slots=True)
class IntParam:
    """An integer query parameter in ``minimum..maximum`` (out of range: 422)."""

    name: str
    description: str
    default: int
    minimum: int
    maximum: int

    def parse(self, raw: str | None) -> int:
        if raw is None:
            return self.default
        # int() would also take "+1", " 1", "1_000" and, slowly, thousands of digits.
        digits = raw.removeprefix("-")
        if not digits.isascii() or not digits.isdigit():
            raise MalformedError(f"{self.name} must be an integer", field=self.name)
        if len(digits) > 19 or not self.minimum <= int(raw) <= self.maximum:
            raise ValidationError(
                f"{self.name} must be from {self.minimum} to {self.maximum}", field=self.name
            )
        return int(raw)

    def schema(self) -> dict[str, Any]:
        return {
            "type": "integer",
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": self.default,
        }


@dataclass(frozen=True, slots=True)
class StrParam:
    """An optional string query parameter of at most ``max_length`` characters."""

    name: str
    description: str
    max_length: int
    pattern: str | None = None  # documented; the service checks the grammar (422)

    def parse(self, raw: str | None) -> str | None:
        if raw is not None and len(raw) > self.max_length:
            raise ValidationError(
                f"{self.name} is longer than {self.max_length} characters", field=self.name
            )
        return raw

    def schema(self) -> dict[str, Any]:
        found: dict[str, Any] = {"type": "string", "maxLength": self.max_length}
        if self.pattern is not None:
            found["pattern"] = self.pattern
        return found


QueryParam = IntParam | StrParam

SINCE = IntParam("since", "only changes after this revision", 0, 0, MAX_REVISION)
LIMIT = IntParam("limit", "at most this many changes", 100, 1, MAX_CHANGES)
HOSTNAME = StrParam("hostname", "only proxies on this hostname", MAX_HOSTNAME + 1, HOSTNAME_GRAMMAR)


def path_params(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` checked against PATH_LIMITS: a longer one names nothing that can
    exist, so it is refused (400) before any look-up."""
    for name, value in values.items():
        limit = PATH_LIMITS.get(name, 255)
        if len(value) > limit:
            raise MalformedError(f"{name} is longer than {limit} characters", field=name)
    return dict(values)


def query_params(declared: tuple[QueryParam, ...], raw: Mapping[str, str]) -> dict[str, Any]:
    """The declared parameters parsed from ``raw``; undeclared ones are ignored."""
    return {p.name: p.parse(raw.get(p.name)) for p in declared}


def path_schema(name: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": PATH_LIMITS.get(name, 255)}
