"""Smooth weighted round robin, as nginx does it.

Each pick adds every candidate's weight to its running score, takes the highest score and
subtracts the total weight from it. Weights 5,1,1 give a,a,b,a,c,a,a rather than
a,a,a,a,a,b,c, so a heavy backend never receives a burst. Scores are kept per backend id,
so a snapshot swap that keeps a backend keeps its place in the rotation.
"""

from __future__ import annotations

from collections.abc import Sequence

from portway.model import Backend


class SmoothWeighted:
    __slots__ = ("_score",)

    def __init__(self) -> None:
        self._score: dict[str, int] = {}

    def pick(self, candidates: Sequence[Backend], client: str, key: str = "") -> Backend | None:
        best: Backend | None = None
        best_score = 0
        total = 0
        score = self._score
        for backend in candidates:
            weight = backend.weight
            total += weight
            current = score.get(backend.id, 0) + weight
            score[backend.id] = current
            if best is None or current > best_score:
                best, best_score = backend, current
        if best is None:
            return None
        score[best.id] = best_score - total
        if len(score) > 4 * len(candidates) + 16:  # forget backends long gone
            keep = {b.id for b in candidates}
            self._score = {k: v for k, v in score.items() if k in keep}
        return best
