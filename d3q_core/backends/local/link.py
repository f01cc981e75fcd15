"""Sample batches from the replay to the learner and their priorities back: raw bytes over
two one-way pipes.

Through multiprocessing Queues every batch was pickled by a feeder thread in the replay and
unpickled by a prefetch thread in the learner, and every priority update took the same road
back: four threads handing each message on, each hand-over a wake-up, on cores the learner
shares with the replay and the simulators (on 2 cores the learner's threads were woken or
preempted ~3,900 times a second). Here each side writes the arrays' bytes into its pipe
itself and reads the other's into a buffer it keeps: one copy each way, no pickling, no
thread. A batch is the records, their int64 indices and float32 importance weights back to
back; an answer is the indices and the float32 |TD| errors.

Flow control: the replay keeps at most `depth` batches whose answers have not come back, and
makes both pipes big enough to hold that many messages (Linux F_SETPIPE_SZ; where it cannot,
`depth` shrinks to what fits, at least 1), so no write waits on the reader. The orchestrator
closes its copies of the ends once both processes have started, and each of the two closes
the other's (`keep_replay_ends`, `keep_learner_ends`): if one of them dies, the other's next
read ends (EOFError) or write fails (BrokenPipeError) instead of hanging.
"""

from __future__ import annotations

import contextlib
import fcntl
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

WIDTHS = 8 + 4  # per row after the record: int64 index, float32 weight (or |TD| error)


def _pipe_max() -> int:
    """The largest pipe an unprivileged process may ask for (Linux; 1 MiB by default)."""
    try:
        return int(open("/proc/sys/fs/pipe-max-size").read())  # noqa: SIM115 - one read
    except (OSError, ValueError):
        return 1 << 20


def _grow_pipe(conn: Connection, nbytes: int) -> int:
    """Ask for a pipe buffer of at least `nbytes` (Linux; unprivileged up to
    /proc/sys/fs/pipe-max-size); returns the size it has. Where more is wanted than an
    unprivileged process may have, as much as it may: asking for more fails outright and
    left the pipe at 64 KiB (a pixel env's batches then had no prefetch at all)."""
    fd = conn.fileno()
    with contextlib.suppress(AttributeError, OSError):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, nbytes)
        except PermissionError:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, min(nbytes, _pipe_max()))
    try:
        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
    except (AttributeError, OSError):
        return 65536  # POSIX guarantees less, every system we run on gives this much


@dataclass
class SampleLink:
    """The four pipe ends; made by the orchestrator and handed to both processes at spawn."""

    batches_in: Connection  # learner reads
    batches_out: Connection  # replay writes
    answers_in: Connection  # replay reads
    answers_out: Connection  # learner writes

    @staticmethod
    def new(ctx: Any) -> SampleLink:
        batches_in, batches_out = ctx.Pipe(duplex=False)
        answers_in, answers_out = ctx.Pipe(duplex=False)
        return SampleLink(batches_in, batches_out, answers_in, answers_out)

    def close(self) -> None:
        for conn in (self.batches_in, self.batches_out, self.answers_in, self.answers_out):
            conn.close()

    def keep_replay_ends(self) -> SampleLink:
        """In the replay's process: the learner's ends closed. Each process is handed all
        four; a replay holding the batches' read end itself never saw its write fail when
        the learner had gone, and a batch bigger than the pipe (an Atari preset's 29 MB)
        then blocked it for good: it never took its last snapshot."""
        self.batches_in.close()
        self.answers_out.close()
        return self

    def keep_learner_ends(self) -> SampleLink:
        """In the learner's process: the replay's ends closed (see keep_replay_ends)."""
        self.batches_out.close()
        self.answers_in.close()
        return self


class BatchSender:
    """Replay side: sends sample batches while fewer than `depth` are unanswered and hands
    back the answers (indices, |TD| errors) as they arrive."""

    def __init__(self, link: SampleLink, record_dtype: np.dtype, depth: int):
        self._out, self._in = link.batches_out, link.answers_in
        self.record_dtype = np.dtype(record_dtype)
        self.max_depth = max(1, int(depth))
        self.depth = self.max_depth
        self.outstanding = 0
        self.rows = 0
        self.broken = False  # the learner is gone: nothing more to send
        self._batch = bytearray()
        self._answer = bytearray()

    @property
    def waitable(self) -> Connection:
        """Readable when an answer has arrived (for multiprocessing.connection.wait)."""
        return self._in

    def configure(self, rows: int) -> None:
        """Buffers and pipe sizes for batches of `rows` records (the learner's call batch)."""
        self.rows = rows
        batch_bytes = rows * (self.record_dtype.itemsize + WIDTHS)
        answer_bytes = rows * WIDTHS
        self._batch = bytearray(batch_bytes)
        self._answer = bytearray(answer_bytes)
        # each message also carries a 4-byte length header
        fits = _grow_pipe(self._out, self.max_depth * (batch_bytes + 4)) // (batch_bytes + 4)
        fits_back = _grow_pipe(self._in, self.max_depth * (answer_bytes + 4)) // (answer_bytes + 4)
        self.depth = max(1, min(self.max_depth, fits, fits_back))

    def has_room(self) -> bool:
        return not self.broken and self.rows > 0 and self.outstanding < self.depth

    def send(self, records: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> bool:
        """One batch of `rows` records; False if the learner is gone."""
        n = self.rows
        if len(records) != n:
            raise ValueError(f"batch of {len(records)} records, the link carries {n}")
        buf = self._batch
        rec_bytes = n * self.record_dtype.itemsize
        np.frombuffer(buf, self.record_dtype, n)[:] = records
        np.frombuffer(buf, np.int64, n, rec_bytes)[:] = indices
        np.frombuffer(buf, np.float32, n, rec_bytes + 8 * n)[:] = weights
        try:
            self._out.send_bytes(buf)
        except OSError:
            self.broken = True
            return False
        self.outstanding += 1
        return True

    def answers(self, limit: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
        """The answers that have arrived (at most `limit`), as (indices, |TD| errors) copies."""
        out: list[tuple[np.ndarray, np.ndarray]] = []
        try:
            while len(out) < limit and self._in.poll():
                got = self._in.recv_bytes_into(self._answer)
                n = got // WIDTHS
                out.append((np.frombuffer(self._answer, np.int64, n).copy(),
                            np.frombuffer(self._answer, np.float32, n, 8 * n).copy()))
                self.outstanding -= 1
        except (EOFError, OSError):
            self.broken = True
        return out


class BatchReceiver:
    """Learner side: the next batch as views into one buffer (valid until the next `get`),
    and the answer for it."""

    def __init__(self, link: SampleLink, record_dtype: np.dtype, rows: int):
        self._in, self._out = link.batches_in, link.answers_out
        self.record_dtype = np.dtype(record_dtype)
        self.rows = rows
        self._buf = bytearray(rows * (self.record_dtype.itemsize + WIDTHS))
        self._answer = bytearray(rows * WIDTHS)

    def get(self, timeout: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(records, indices, weights), or None if none arrived within `timeout` seconds.
        EOFError when the replay has gone."""
        if not self._in.poll(timeout):
            return None
        got = self._in.recv_bytes_into(self._buf)
        n, rec_bytes = self.rows, self.rows * self.record_dtype.itemsize
        if got != len(self._buf):
            raise ValueError(f"sample batch of {got} bytes, expected {len(self._buf)}")
        return (np.frombuffer(self._buf, self.record_dtype, n),
                np.frombuffer(self._buf, np.int64, n, rec_bytes),
                np.frombuffer(self._buf, np.float32, n, rec_bytes + 8 * n))

    def answer(self, indices: np.ndarray, td: np.ndarray) -> None:
        """The batch's |TD| errors, for its indices; BrokenPipeError if the replay is gone."""
        n = len(indices)
        np.frombuffer(self._answer, np.int64, n)[:] = indices
        np.frombuffer(self._answer, np.float32, n, 8 * n)[:] = td
        self._out.send_bytes(memoryview(self._answer)[:WIDTHS * n])
