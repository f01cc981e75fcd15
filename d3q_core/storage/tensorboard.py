"""TensorBoard events of a run, written without TensorFlow in the writing process.

Written synchronously with tensorboardX's record writer, not its SummaryWriter: the latter
writes from a thread behind a bounded queue, and when that thread died of a full disk the
orchestrator blocked forever on the full queue (a hung run that Ctrl-C could not stop). Here
a failed write raises in the caller, where the run can act on it. The orchestrator writes a
few scalars a second, so doing it in its own thread costs nothing measurable.
"""

from __future__ import annotations

import errno
import math
import time
from pathlib import Path
from typing import Any

from d3q_core.storage.rundir import reason_of

ENV_STEPS_PREFIX = "by_env_steps/"


class TensorBoardLog:
    """Scalars against learner samples and env steps. A write failure closes the log and says why in
    `error`; `disk_full` tells a full disk (which the run treats as a fault) from other
    failures (the curves are a convenience: the run goes on without them)."""

    def __init__(self, directory: Path, enabled: bool = True):
        self.directory = Path(directory)
        self.writer: Any = None
        self.error: str | None = None
        self.disk_full = False
        if enabled:
            self._guard(self._open)

    def _open(self) -> None:
        from tensorboardX.event_file_writer import EventsWriter

        self.directory.mkdir(parents=True, exist_ok=True)
        self.writer = EventsWriter(str(self.directory / "events"))
        self.writer.flush()

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def _guard(self, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except OSError as exc:
            self.disk_full = exc.errno == errno.ENOSPC
            where = getattr(self.writer, "_file_name", None) or self.directory
            self.error = f"{reason_of(exc)} writing {where}"
            writer, self.writer = self.writer, None
            if writer is not None:
                try:
                    writer.close()
                except Exception:  # noqa: BLE001 - the first error is the one reported
                    pass

    def _write(self, summary: Any, step: int) -> None:
        from tensorboardX.proto.event_pb2 import Event

        if self.writer is not None:
            self._guard(self.writer.write_event,
                        Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Non-finite values are skipped (a NaN loss before the first step, say)."""
        if self.writer is not None and math.isfinite(value):
            from tensorboardX.summary import scalar

            self._write(scalar(tag, float(value)), step)

    def scalars(self, values: dict[str, float], learner_samples: int, env_steps: int) -> None:
        """Each value twice: against learner samples (its tag) and against env steps
        (`by_env_steps/<tag>`, the axis SB3 and CleanRL plot against), so every curve can be
        compared on either."""
        for tag, value in values.items():
            self.scalar(tag, value, learner_samples)
            self.scalar(f"{ENV_STEPS_PREFIX}{tag}", value, env_steps)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.writer is not None:
            from tensorboardX.summary import text as text_summary

            self._write(text_summary(tag, text), step)

    def flush(self) -> None:
        """Everything added so far reaches the file (an OSError here is caught as any)."""
        if self.writer is not None:
            self._guard(self.writer.flush)

    def close(self) -> None:
        if self.writer is not None:
            self._guard(self.writer.close)
            self.writer = None
