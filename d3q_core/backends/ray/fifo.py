"""Sample batches and their priorities through named pipes, between replay shards and the
learner on one machine (a private instance, `cluster.address = "local"`).

Through actor calls each group of batches and each group of answers is a Ray call: ~75 a
second at the CartPole defaults, each waking Ray's io and polling threads on both sides
(11,500 context switches a second in a Ray run against 1,900 with the local backend, on the
2 cores the learner shares: BENCHMARKS.md, "Ray backend, a third pass"). On one machine the
local backend's pipe protocol (backends/local/link.py: raw bytes, one copy each way, no
thread) works between two actors as well, over FIFOs the run makes in a folder of its own:
`batches-<shard>` (replay writes, learner reads) and `answers-<shard>` (the other way).

Each side opens its read end at once (a FIFO's read end opens without a writer when asked
not to wait) and its write end once the other side has opened its read end (until then the
open fails with ENXIO and is tried again at the next look): neither side ever blocks on the
other's start-up. After that the semantics are the pipes': a learner that has gone fails
the replay's next write (BrokenPipeError), a replay that has gone ends the learner's read
(EOFError), which the learner reports as it does with the local backend.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from d3q_core.backends.local.link import BatchReceiver, BatchSender, SampleLink
from d3q_core.backends.ray.data import choose_shard


def make_fifos(shards: int) -> str:
    """A new folder with each shard's two FIFOs; the run removes it (`remove_fifos`)."""
    folder = tempfile.mkdtemp(prefix="d3q-samples-")
    for shard in range(shards):
        for name in ("batches", "answers"):
            os.mkfifo(Path(folder) / f"{name}-{shard}", 0o600)
    return folder


def remove_fifos(folder: str | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _read_end(path: Path) -> Connection:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    return Connection(fd, readable=True, writable=False)


def _write_end(path: Path) -> Connection | None:
    """None while nobody has the FIFO open for reading."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None
        raise
    os.set_blocking(fd, True)
    return Connection(fd, readable=False, writable=True)


class FifoSampleSender:
    """SampleBatchesOut of one replay shard: the local backend's BatchSender, once the
    learner has opened its end."""

    def __init__(self, folder: str, shard: int, record_dtype: np.dtype, depth: int):
        self._batches = Path(folder) / f"batches-{shard}"
        self._answers = _read_end(Path(folder) / f"answers-{shard}")
        self._dtype, self._depth = record_dtype, depth
        self._out: Connection | None = None
        self._sender: BatchSender | None = None
        self._unopenable = False  # the batches' FIFO could not be opened at all
        self.rows = 0

    def _open(self) -> BatchSender | None:
        if self._sender is None and self.rows > 0 and not self._unopenable:
            try:
                self._out = _write_end(self._batches)
            except OSError:
                self._unopenable = True
                return None
            if self._out is not None:
                sender = BatchSender(SampleLink(None, self._out, self._answers, None),  # type: ignore[arg-type]
                                     self._dtype, self._depth)
                sender.configure(self.rows)
                self._sender = sender
        return self._sender

    @property
    def broken(self) -> bool:
        return self._unopenable or (self._sender is not None and self._sender.broken)

    @property
    def waitable(self) -> Connection:
        return self._answers

    @property
    def outstanding(self) -> int:
        return self._sender.outstanding if self._sender is not None else 0

    @property
    def depth(self) -> int:
        return self._sender.depth if self._sender is not None else self._depth

    def configure(self, rows: int) -> None:
        self.rows = rows
        self._open()

    def has_room(self) -> bool:
        sender = self._open()
        return sender is not None and sender.has_room()

    def send(self, records: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> bool:
        sender = self._open()
        return sender is not None and sender.send(records, indices, weights)

    def answers(self, limit: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
        return self._sender.answers(limit) if self._sender is not None else []

    def close(self) -> None:
        for conn in (self._answers, self._out):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()


class FifoSampleReceiver:
    """SampleBatchesIn of the learner: one batch at a time from the shards with one waiting,
    a shard chosen in proportion to its priority total (`choose_shard`, as over calls)."""

    def __init__(self, folder: str, shards: int, record_dtype: np.dtype, call_batch: Any,
                 totals: Any = dict, seed: int = 0):
        self._folder, self._dtype, self._call_batch = Path(folder), record_dtype, call_batch
        self._totals = totals
        self._in = [_read_end(self._folder / f"batches-{s}") for s in range(shards)]
        self._out: list[Connection | None] = [None] * shards
        self._receivers: list[BatchReceiver | None] = [None] * shards
        self._shard = 0
        self._rng = np.random.default_rng(seed)

    def _receiver(self, shard: int) -> BatchReceiver | None:
        if self._receivers[shard] is None:
            rows = int(self._call_batch.value)
            out = self._out[shard] or _write_end(self._folder / f"answers-{shard}")
            self._out[shard] = out
            if out is None or rows <= 0:
                return None
            self._receivers[shard] = BatchReceiver(
                SampleLink(self._in[shard], None, None, out),  # type: ignore[arg-type]
                self._dtype, rows)
        return self._receivers[shard]

    def get(self, timeout: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """EOFError once a shard has gone (its writer closed: the replay ended)."""
        ready = [s for s in range(len(self._in)) if self._receiver(s) is not None]
        if not ready:
            wait(self._in, min(timeout, 0.01))  # a replay opening its end is looked for again
            return None
        readable = wait([self._in[s] for s in ready], timeout)  # at once if one has a batch
        waiting = [s for s in ready if self._in[s] in readable]
        if not waiting:
            return None
        self._shard = choose_shard(waiting, self._totals(), self._rng)
        receiver = self._receivers[self._shard]
        assert receiver is not None
        return receiver.get(0)

    def answer(self, indices: np.ndarray, td: np.ndarray) -> None:
        receiver = self._receivers[self._shard]
        assert receiver is not None
        receiver.answer(indices, td)

    def close(self) -> None:
        for conn in (*self._in, *self._out):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
