"""The data ports over actor calls: experience from the simulators into the replay, sample
batches from the replay to the learner and priorities back.

Both streams are grouped so that each call carries 10-20 ms of work (an actor call costs
0.3-1 ms here): a simulator sends what it made in `simulators.batch_seconds` in one call
(the replay still takes the batches one by one, so its rate limiter sees what it always
saw), and the replay sends as many sample batches per call as stay under Ray's inline size
(`cluster.sample_batches_per_call`), at once whenever the learner would otherwise have
nothing to train on.
"""

from __future__ import annotations

import time
from collections import deque
from multiprocessing.connection import wait
from typing import Any

import numpy as np
import ray

from d3q_core.backends.ray.mailbox import ANSWERS, EXPERIENCE, SAMPLES, Mailbox
from d3q_core.roles.messages import Experience
from d3q_core.roles.ports import Flag

EXPERIENCE_GROUP = "experience"  # the replay actor's threads for experience calls


class Calls:
    """Calls made and not yet seen finished; whether one failed (its actor has gone) is
    looked at every CHECK_SECONDS, not at every call (a `ray.wait` costs ~50 us)."""

    CHECK_SECONDS = 0.05

    def __init__(self) -> None:
        self.refs: list = []
        self._checked = 0.0

    def add(self, ref: Any) -> None:
        self.refs.append(ref)

    def __len__(self) -> int:
        return len(self.refs)

    def failed(self, now: bool = False) -> bool:
        t = time.monotonic()
        if not self.refs or (not now and t - self._checked < self.CHECK_SECONDS):
            return False
        self._checked = t
        done, self.refs = ray.wait(self.refs, num_returns=len(self.refs), timeout=0)
        return any(_failed(ref) for ref in done)

    def wait_one(self, timeout: float) -> bool:
        """Wait up to `timeout` for the oldest calls to finish; False if one failed."""
        done, self.refs = ray.wait(self.refs, num_returns=1, timeout=timeout)
        return not any(_failed(ref) for ref in done)


def _failed(ref: Any) -> bool:
    try:
        return ray.get(ref) is False  # False: the peer's mailbox had closed
    except ray.exceptions.RayError:
        return True


class ExperienceCalls:
    """ExperienceOut: batches gathered for `batch_seconds`, one call each; at most
    `credits` calls the replay has not finished storing."""

    def __init__(self, replay: Any, credits: int, batch_seconds: float, stop: Flag):
        self.credits, self.batch_seconds, self.stop = credits, batch_seconds, stop
        self._deliver = replay.deliver.options(concurrency_group=EXPERIENCE_GROUP)
        self._batch: list[Experience] = []
        self._since = 0.0
        self._calls = Calls()

    def send(self, experience: Experience) -> bool:
        if not self._batch:
            self._since = time.monotonic()
        self._batch.append(experience)
        if time.monotonic() - self._since < self.batch_seconds:
            return True
        batch, self._batch = self._batch, []
        self._calls.add(self._deliver.remote(EXPERIENCE, batch))
        while len(self._calls) >= self.credits:  # out of credits: wait for the replay
            if not self._calls.wait_one(0.05):
                return False  # the replay has gone
            if self.stop.is_set():
                return False
        return not self._calls.failed()

    def close(self) -> None:
        self._batch = []  # a stopping run does not wait for the last batches


class ExperienceMailbox:
    """ExperienceIn: the calls' batches one at a time, in arrival order; the call returns
    (its simulator gets the credit back) once its last batch is `done`."""

    def __init__(self, mailbox: Mailbox):
        self.mailbox = mailbox
        self._current: list[Experience] = []
        self._done: Any = None
        self._at = 0

    def _next_call(self) -> bool:
        item = self.mailbox.take(EXPERIENCE)
        if item is None:
            return False
        self._current, self._done = item
        self._at = 0
        return True

    def receive(self, timeout: float = 0.0, wake: Any = None) -> bool:
        """With a timeout: sleep until something new arrives (a batch held back by the rate
        limiter is no reason to wake), any delivery, the learner's answers too."""
        if timeout > 0:
            answers = getattr(wake, "waitable", None)  # FIFO answers: woken by them at once
            if answers is not None and not self.mailbox.pending(EXPERIENCE):
                wait([answers], timeout)
            else:
                self.mailbox.wait(timeout)
        return self.pending() > 0

    def peek(self) -> Experience | None:
        if self._at >= len(self._current) and not self._next_call():
            return None
        return self._current[self._at]

    def done(self) -> None:
        self._at += 1
        if self._at >= len(self._current) and self._done is not None:
            self._done.set()
            self._done = None

    def pending(self) -> int:
        return len(self._current) - self._at + self.mailbox.pending(EXPERIENCE)

    def close(self) -> None:
        self.mailbox.close()


class SampleCalls:
    """SampleBatchesOut: up to `per_call` batches a call to the learner; answers come back
    into this actor's mailbox."""

    INLINE_BYTES = 90_000  # under Ray's max_direct_call_object_size (100 KB)
    MOST_PER_CALL = 8

    def __init__(self, learner: Any, mailbox: Mailbox, prefetch: int, per_call: int,
                 shard: int = 0):
        """`per_call` 0: sized on the first batch to stay under INLINE_BYTES; `shard`: which
        replay shard sends (the learner answers it)."""
        self._learner_ref, self.mailbox, self.shard = learner, mailbox, shard
        self._prefetch = prefetch
        self.per_call = per_call or self.MOST_PER_CALL
        self._sized = per_call > 0
        self.depth = max(prefetch, 2 * self.per_call)
        self.rows = 0
        self.broken = False
        self.outstanding = 0
        self._group: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._calls = Calls()

    def configure(self, rows: int) -> None:
        self.rows = rows

    def has_room(self) -> bool:
        return not self.broken and self.outstanding < self.depth

    def send(self, records: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> bool:
        if self.broken:
            return False
        if not self._sized:
            size = records.nbytes + indices.nbytes + weights.nbytes
            self.per_call = max(1, min(self.MOST_PER_CALL, self.INLINE_BYTES // size))
            self.depth = max(self._prefetch, 2 * self.per_call)
            self._sized = True
        self._group.append((records, indices, weights))
        self.outstanding += 1
        if len(self._group) >= self.per_call or self.outstanding == len(self._group):
            self._flush()  # a full call, or the learner has nothing else to train on
        return not self.broken

    def _flush(self) -> None:
        group, self._group = self._group, []
        self._calls.add(self._learner_ref().deliver.remote(SAMPLES, (self.shard, group)))

    def answers(self, limit: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
        out: list[tuple[np.ndarray, np.ndarray]] = []
        while len(out) < limit:
            item = self.mailbox.take(ANSWERS)
            if item is None:
                break
            out.extend(item[0])
        self.outstanding -= len(out)
        if self._group and self.outstanding == len(self._group):
            self._flush()
        if self._calls.failed():
            self.broken = True
        return out


def choose_shard(waiting: list[int], totals: dict[int, tuple[float, float]],
                 rng: np.random.Generator) -> int:
    """A shard among those with a batch waiting, in proportion to its priority total (one
    not reported yet counts as the mean of those that were). With every shard waiting this
    is the proportional choice the importance weights assume; when some have nothing
    waiting it is that choice among the rest (an approximation the learner never waits
    for)."""
    if len(waiting) == 1:
        return waiting[0]
    known = [totals[s][0] for s in waiting if s in totals and totals[s][0] > 0]
    fill = sum(known) / len(known) if known else 1.0
    w = np.array([totals[s][0] if s in totals and totals[s][0] > 0 else fill
                  for s in waiting])
    return waiting[int(rng.choice(len(waiting), p=w / w.sum()))]


class SampleMailbox:
    """SampleBatchesIn: the calls' batches one at a time, a call's batches in a row, calls
    from several shards chosen by `choose_shard`; a call's answers go back to its shard in
    one call once all its batches are answered."""

    def __init__(self, mailbox: Mailbox, replays: list[Any],
                 totals: Any = dict, seed: int = 0):
        """`replays`: each shard's actor, by index (callables: found by name when needed);
        `totals`: the shards' (total, p_min) as last reported."""
        self.mailbox, self._replays, self._totals = mailbox, replays, totals
        self._waiting: dict[int, deque] = {i: deque() for i in range(len(replays))}
        self._shard = 0
        self._batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._at = 0
        self._answers: list[tuple[np.ndarray, np.ndarray]] = []
        self._calls = Calls()
        self._rng = np.random.default_rng(seed)

    def _collect(self) -> bool:
        while (item := self.mailbox.take(SAMPLES)) is not None:
            shard, group = item[0]
            self._waiting[shard].append(group)
        return any(self._waiting.values())

    def get(self, timeout: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        if self._calls.failed():
            raise EOFError("a replay shard has gone")
        if self._at >= len(self._batches):
            if not self._collect():
                self.mailbox.wait(timeout)
                if not self._collect():
                    return None
            waiting = [s for s, q in self._waiting.items() if q]
            self._shard = choose_shard(waiting, self._totals(), self._rng)
            self._batches, self._at = self._waiting[self._shard].popleft(), 0
        batch = self._batches[self._at]
        self._at += 1
        return batch

    def answer(self, indices: np.ndarray, td: np.ndarray) -> None:
        self._answers.append((indices, np.asarray(td, np.float32)))
        if len(self._answers) >= self._at and self._at >= len(self._batches):
            answers, self._answers = self._answers, []
            replay = self._replays[self._shard]()
            self._calls.add(replay.deliver.remote(ANSWERS, answers))
