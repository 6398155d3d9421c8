"""Plain round robin."""

from __future__ import annotations

from collections.abc import Sequence

from portway.model import Backend


class RoundRobin:
    """Cycles through the candidates; a changed list simply continues from the counter."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def pick(self, candidates: Sequence[Backend], client: str, key: str = "") -> Backend | None:
        if not candidates:
            return None
        index = self._next % len(candidates)
        self._next = index + 1
        return candidates[index]
