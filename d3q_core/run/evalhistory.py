"""The evaluation history a run keeps in memory for its score chart and result.json (every
evaluation is also in the run directory's evals.jsonl, which a resume reads).

A fast learner evaluates several times a second (3,306 evaluations in a 20-minute soak), so a
history that kept every point would grow without end in a long run. This one keeps every
evaluation up to `keep` points, then thins the older half to every second point, always
keeping the first and the best: recent evaluations stay at full resolution, old ones get
coarser, and memory stays bounded. The count and the best mean are exact. TensorBoard keeps
every evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict

from d3q_core.snapshot import EvalPoint

EVAL_KEEP = 2000  # ~2,000 points fill a wide terminal chart; ~0.2 MB in memory


class EvalHistory:
    def __init__(self, points: Iterable[EvalPoint] = (), keep: int = EVAL_KEEP):
        if keep < 8:
            raise ValueError("keep must be at least 8")
        self.keep = keep
        self._points: list[EvalPoint] = []
        self.count = 0
        self.best: float | None = None
        for p in points:
            self.add(p)

    def add(self, point: EvalPoint) -> None:
        self._points.append(point)
        self.count += 1
        if self.best is None or point.mean > self.best:
            self.best = point.mean
        if len(self._points) > self.keep:
            self._thin()

    def _thin(self) -> None:
        half = len(self._points) // 2
        old = self._points[:half]
        best = max(range(half), key=lambda i: old[i].mean)
        keep = set(range(0, half, 2))
        if best not in keep:  # the best takes the place of a neighbour, never the first's
            keep.discard(best - 1 if best > 1 else best + 1)
            keep.add(best)
        kept = [p for i, p in enumerate(old) if i in keep]
        self._points = kept + self._points[half:]

    def points(self) -> tuple[EvalPoint, ...]:
        return tuple(self._points)

    def as_dicts(self) -> list[dict]:
        return [asdict(p) for p in self._points]

    def __len__(self) -> int:
        return len(self._points)
