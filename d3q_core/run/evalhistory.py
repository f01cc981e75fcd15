"""The evaluation history a run keeps for its score chart, result.json and a resume.

A fast learner evaluates several times a second (3,306 evaluations in a 20-minute soak), so a
history that kept every point would grow without end in a long run. This one keeps every
evaluation up to `keep` points, then thins the older half to every second point, always
keeping the first and the best: recent evaluations stay at full resolution, old ones get
coarser, and memory stays bounded. The count and the best mean are exact. TensorBoard keeps
every evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict

from d3q_core.snapshot import EvalPoint

EVAL_KEEP = 2000  # ~2,000 points fill a wide terminal chart; ~0.2 MB in memory


class EvalHistory:
    def __init__(self, points: Iterable[EvalPoint] = (), count: int | None = None,
                 keep: int = EVAL_KEEP):
        if keep < 8:
            raise ValueError("keep must be at least 8")
        self.keep = keep
        self._points: list[EvalPoint] = []
        self.count = 0
        self.best: float | None = None
        for p in points:
            self.add(p)
        if count is not None:  # a resumed run's history may have been thinned before
            self.count = max(self.count, count)

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

    def up_to(self, learner_samples: int) -> tuple[list[dict], int]:
        """The points at or before `learner_samples` as dicts, and the count of evaluations
        made up to there (for run_state.json: what a resume from that checkpoint knows)."""
        kept = [p for p in self._points if p.learner_samples <= learner_samples]
        return [asdict(p) for p in kept], self.count - (len(self._points) - len(kept))

    def as_dicts(self) -> list[dict]:
        return [asdict(p) for p in self._points]

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[EvalPoint]:
        return iter(self._points)

    def __getitem__(self, i: int) -> EvalPoint:
        return self._points[i]
