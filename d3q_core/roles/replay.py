"""Replay role: owns the prioritized memory, ingests experience batches, keeps sample
batches in flight to the learner and applies its priority updates, under the rate limiter.

For a pixel env the memory is a FrameMemory (each frame stored once, stacks rebuilt when
sampled) fed through a FrameIngest; the learner sees the same records either way."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from d3q_core.algo.frameingest import FrameIngest, streams_needed
from d3q_core.algo.framememory import FrameLayout, FrameMemory
from d3q_core.algo.memory import ReplayMemory, annealed_beta
from d3q_core.algo.qnet import QNetSpec
from d3q_core.algo.ratelimit import RateLimiter
from d3q_core.algo.transitions import record_dtype
from d3q_core.config import Config
from d3q_core.faults import fault
from d3q_core.roles.messages import Log, ReplaySaved, ReplayStats, SaveReplay
from d3q_core.roles.ports import ReplayPorts
from d3q_core.ticker import Ticker


class Replay:
    """The replay memory's service loop; `run(ports)` wherever a backend hosts it."""

    def __init__(self, cfg: Config, spec: QNetSpec, seed: int, restore: Path | None = None,
                 shard: int = 0, layout: FrameLayout | None = None, n_simulators: int = 1):
        """`shard`: which of `replay.shards` this is; each holds its share of the capacity
        and of min_size. `layout`: a pixel env's frames (a FrameMemory with a stream per env
        copy of its simulators), None for flat vectors."""
        r = cfg.replay
        self.cfg = cfg
        self.capacity = -(-r.capacity // r.shards)
        self.min_size = -(-r.min_size // r.shards)
        seed = seed + 7919 * shard
        self.memory: ReplayMemory | FrameMemory
        self.frames: FrameIngest | None = None
        if layout is not None:
            k = cfg.simulators.envs_per_simulator
            self.memory = FrameMemory.load(restore) if restore is not None else FrameMemory(
                self.capacity, layout, streams_needed(n_simulators, k, r.shards, shard), r.alpha,
                r.priority_eps, seed=seed)
            self.frames = FrameIngest(self.memory, k, r.shards)
        elif restore is not None:
            self.memory = ReplayMemory.load(restore)
        else:
            self.memory = ReplayMemory(self.capacity, record_dtype(spec), r.alpha,
                                       r.priority_eps, seed=seed)
        s = cfg.simulators
        self.max_insert = s.envs_per_simulator * (s.steps_per_batch + cfg.algorithm.n_step)
        self.limiter: RateLimiter | None = None
        self._limiter_batch = 0
        self.nonfinite = 0  # batches whose priorities held NaN or inf
        self.stop_serving_after = fault("replay_stop_serving_after")
        self.sampled_total = 0

    def beta(self) -> float:
        r = self.cfg.replay
        return annealed_beta(r.beta, r.beta_anneal_samples, self.sampled_total)

    def _rebuild_limiter(self, batch: int) -> None:
        """The slack depends on the learner's batch, known only once TF has started; inserts
        made while filling up carry over."""
        r = self.cfg.replay
        size_hint = batch if batch > 0 else 1
        buf = RateLimiter.error_buffer_for(r.samples_per_insert, self.max_insert, size_hint,
                                           r.error_buffer)
        lim = RateLimiter(r.samples_per_insert, self.min_size, buf)
        if self.limiter is not None:
            lim.inserts, lim.samples = self.limiter.inserts, self.limiter.samples
        elif len(self.memory):
            lim.reset(len(self.memory))
        self.limiter, self._limiter_batch = lim, batch

    def run(self, ports: ReplayPorts) -> int:
        try:
            self._loop(ports)
        finally:
            ports.experiences.close()
        return 0

    def _loop(self, ports: ReplayPorts) -> None:
        inbox, sender = ports.experiences, ports.samples
        stats_tick, shard_tick = Ticker(0.5), Ticker(0.1)
        last = (time.monotonic(), 0, 0)
        inserted = served = 0
        while not ports.stop.is_set():
            busy = False
            batch = ports.call_batch.value
            if self.limiter is None or (batch > 0 and self._limiter_batch != batch):
                self._rebuild_limiter(batch)
            if batch > 0 and sender.rows != batch:
                sender.configure(batch)
            lim = self.limiter
            # 1. priority updates: cheap, and they make the next samples better
            for idx, td in sender.answers():
                self.memory.update_priorities(*self._finite(idx, td, ports))
                busy = True
            # 2. inserts, as far as the limiter allows; each returns its simulator a credit
            inbox.receive()
            for _ in range(16):
                message = inbox.peek()
                if message is None:
                    break
                records = message.records
                if not lim.can_insert(len(records)):
                    break
                prios = message.priorities
                if prios is not None and not np.isfinite(prios).all():
                    self._nonfinite(ports, f"simulator {message.simulator}'s initial priorities")
                    prios = None  # the running max priority: sampled soon, not trusted
                stored = len(records)
                if self.frames is not None:  # what the memory kept: an early message counts
                    # when it is stored, a stale one or a transition whose frames left never
                    stored = int((self.frames.add(message.simulator, message.incarnation,
                                                  message.frames, records, prios,
                                                  message.seq) >= 0).sum())
                else:
                    self.memory.add(records, prios)
                lim.insert(stored)
                inserted += stored
                inbox.done()
                busy = True
            if not ports.ready.is_set() and len(self.memory) >= self.min_size:
                ports.ready.set()
            if ports.shard is not None and shard_tick.due() and len(self.memory):
                ports.shard.report(*self.memory.total_and_min())
            # 3. keep up to replay.prefetch sample batches in flight to the learner
            if self.stop_serving_after is not None and served >= self.stop_serving_after:
                batch = 0  # injected fault: the replay silently stops serving
            while batch > 0 and sender.has_room() and lim.can_sample(batch):
                s = self.memory.sample(batch, self.beta(),
                                       ports.shard.global_min() if ports.shard else None)
                if not sender.send(s.records, s.indices, s.weights):
                    break  # the learner is gone; the orchestrator ends the run
                lim.sample(batch)
                self.sampled_total += batch
                served += 1
                busy = True
            self._commands(ports)
            if stats_tick.due():
                now = time.monotonic()
                t0, i0, s0 = last
                dt = max(now - t0, 1e-9)
                ports.events.emit(self.stats((inserted - i0) / dt,
                                             (self.sampled_total - s0) / dt, inserted, ports))
                last = (now, inserted, self.sampled_total)
            if not busy:  # sleep until the learner answers or a simulator sends, not spin:
                # an answer frees room for a batch and, through the limiter, for inserts
                inbox.receive(timeout=0.005, wake=None if sender.broken else sender)

    def _finite(self, idx: np.ndarray, td: np.ndarray,
                ports: ReplayPorts) -> tuple[np.ndarray, np.ndarray]:
        """A non-finite |TD| error would poison every total of the sum tree: those entries
        keep the priority they had."""
        ok = np.isfinite(td)
        if ok.all():
            return idx, td
        self._nonfinite(ports, "the learner's priorities")
        return idx[ok], td[ok]

    def _nonfinite(self, ports: ReplayPorts, what: str) -> None:
        self.nonfinite += 1
        if self.nonfinite == 1 or self.nonfinite % 1000 == 0:
            ports.events.emit(Log("warning", f"non-finite values in {what} ignored "
                                             f"({self.nonfinite} time(s))"))

    def _commands(self, ports: ReplayPorts) -> None:
        cmd = ports.commands.poll()
        if isinstance(cmd, SaveReplay):
            path = Path(cmd.path)
            try:
                self.memory.save(path)
                saved = ReplaySaved(str(path), cmd.number)
            except OSError as exc:
                saved = ReplaySaved(str(path), cmd.number, error=str(exc))
            ports.events.emit(saved, wait=True)  # the run's stop waits for it

    def stats(self, insert_rate: float, sample_rate: float, inserted: int,
              ports: ReplayPorts | None = None) -> ReplayStats:
        """The stats message; with the ports, what waits on them too (a batch held back by
        the limiter, sample batches the learner has not answered)."""
        st = self.memory.stats()
        return ReplayStats(
            size=st.size,
            capacity=st.capacity,
            insert_rate=insert_rate,
            sample_rate=sample_rate,
            inserted=inserted,
            sampled=self.sampled_total,
            total_priority=float(st.total),
            max_priority=float(st.max_priority),
            mean_priority=float(st.mean_priority),
            histogram=tuple(int(c) for c in st.histogram),
            bin_edges=tuple(float(e) for e in st.bin_edges),
            beta=self.beta(),
            waiting_insert=ports is not None and ports.experiences.pending() > 0,
            batches_in_flight=ports.samples.outstanding if ports is not None else 0,
            in_flight_limit=ports.samples.depth if ports is not None else 0,
            nbytes=self.memory.nbytes,
        )
