"""TensorBoard events of a run, written without TensorFlow in the writing process."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from d3q_core.storage.rundir import reason_of


class TensorBoardLog:
    """Scalars against learner samples, written with tensorboardX so the orchestrator's
    process never imports TensorFlow. A write failure disables it (see `error`) rather than
    ending the run: the curves are a convenience, the checkpoints are not."""

    def __init__(self, directory: Path, enabled: bool = True, flush_secs: float = 5.0):
        self.writer: Any = None
        self.error: str | None = None
        if enabled:
            try:
                from tensorboardX import SummaryWriter

                self.writer = SummaryWriter(logdir=str(directory), flush_secs=flush_secs)
            except OSError as exc:
                self.error = f"{directory}: {reason_of(exc)}"

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def _guard(self, action: Any, *args: Any, **kwargs: Any) -> None:
        if self.writer is None:
            return
        try:
            action(*args, **kwargs)
        except OSError as exc:
            self.error = f"TensorBoard events: {reason_of(exc)}"
            writer, self.writer = self.writer, None
            try:
                writer.close()
            except Exception:
                pass

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Non-finite values are skipped (a NaN loss before the first step, say)."""
        if self.writer is not None and math.isfinite(value):
            self._guard(self.writer.add_scalar, tag, float(value), global_step=int(step))

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.writer is not None:
            self._guard(self.writer.add_text, tag, text, global_step=int(step))

    def flush(self) -> None:
        """Ask the writer to flush. tensorboardX writes from its own thread, so events reach
        the file within `flush_secs` of being added, not necessarily before this returns;
        `close` does write everything."""
        if self.writer is not None:
            self._guard(self.writer.flush)

    def close(self) -> None:
        if self.writer is not None:
            self._guard(self.writer.close)
            self.writer = None
