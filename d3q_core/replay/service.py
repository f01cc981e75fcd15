"""Replay process: owns the prioritized memory, ingests experience batches, keeps sample
batches in flight to the learner and applies its priority updates, under the rate limiter."""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d3q_core.config import Config
from d3q_core.faults import fault
from d3q_core.proc import Ticker, child_setup, flush_and_exit, send_nowait
from d3q_core.replay.inbox import ExperienceInbox, InboxAddress
from d3q_core.replay.link import BatchSender, SampleLink
from d3q_core.replay.memory import ReplayMemory
from d3q_core.replay.ratelimit import RateLimiter
from d3q_core.transitions import transition_dtype


@dataclass
class ReplayChannels:
    experiences: InboxAddress  # in, one socket per simulator: (index, records, td | None)
    link: SampleLink  # out: sample batches; in: their |TD| errors
    commands: Any  # in: ("snapshot", path)
    stats: Any  # out: messages
    stop: Any  # Event
    ready: Any  # Event set once min_size transitions are stored
    sample_batch: Any  # Value('i'): the learner's global batch; 0 until it is known


class ReplayService:
    """The loop as a plain class; the process entry point is `replay_main`."""

    def __init__(self, cfg: Config, obs_dim: int, seed: int, restore: Path | None = None):
        r = cfg.replay
        self.cfg = cfg
        if restore is not None:
            self.memory = ReplayMemory.load(restore)
        else:
            self.memory = ReplayMemory(
                r.capacity, transition_dtype(obs_dim), r.alpha, r.priority_eps, seed=seed
            )
        s = cfg.simulators
        self.max_insert = s.envs_per_simulator * (s.steps_per_batch + cfg.learner.n_step)
        self.limiter: RateLimiter | None = None
        self._limiter_batch = 0
        self.inbox: ExperienceInbox | None = None
        self.dropped = 0
        self.stop_serving_after = fault("replay_stop_serving_after")
        self.sampled_total = 0

    def beta(self) -> float:
        r = self.cfg.replay
        return r.beta + (1.0 - r.beta) * min(1.0, self.sampled_total / r.beta_anneal_samples)

    def _rebuild_limiter(self, batch: int) -> None:
        """The slack depends on the learner's batch, known only once TF has started; inserts
        made while filling up carry over."""
        r = self.cfg.replay
        size_hint = batch if batch > 0 else 1
        buf = RateLimiter.error_buffer_for(r.samples_per_insert, self.max_insert, size_hint,
                                           r.error_buffer)
        lim = RateLimiter(r.samples_per_insert, r.min_size, buf)
        if self.limiter is not None:
            lim.inserts, lim.samples = self.limiter.inserts, self.limiter.samples
        elif len(self.memory):
            lim.reset(len(self.memory))
        self.limiter, self._limiter_batch = lim, batch

    def run(self, ch: ReplayChannels) -> None:
        self.inbox = ExperienceInbox(ch.experiences)
        sender = BatchSender(ch.link, self.memory.dtype, self.cfg.replay.prefetch)
        try:
            self._loop(ch, sender)
        finally:
            self.inbox.close()

    def _loop(self, ch: ReplayChannels, sender: BatchSender) -> None:
        inbox = self.inbox
        assert inbox is not None  # made by run()
        stats_tick = Ticker(0.5)
        last = (time.monotonic(), 0, 0)
        inserted = served = 0
        while not ch.stop.is_set():
            busy = False
            batch = ch.sample_batch.value
            if self.limiter is None or (batch > 0 and self._limiter_batch != batch):
                self._rebuild_limiter(batch)
            if batch > 0 and sender.rows != batch:
                sender.configure(batch)
            lim = self.limiter
            # 1. priority updates: cheap, and they make the next samples better
            for idx, td in sender.answers():
                self.memory.update_priorities(idx, td)
                busy = True
            # 2. inserts, as far as the limiter allows; each returns its simulator a credit
            inbox.receive()
            for _ in range(16):
                message = inbox.peek()
                if message is None:
                    break
                _, records, td = message
                if not lim.can_insert(len(records)):
                    break
                self.memory.add(records, td)
                lim.insert(len(records))
                inserted += len(records)
                inbox.done()
                busy = True
            if not ch.ready.is_set() and len(self.memory) >= self.cfg.replay.min_size:
                ch.ready.set()
            # 3. keep up to replay.prefetch sample batches in flight to the learner
            if self.stop_serving_after is not None and served >= self.stop_serving_after:
                batch = 0  # injected fault: the replay silently stops serving
            while batch > 0 and sender.has_room() and lim.can_sample(batch):
                s = self.memory.sample(batch, self.beta())
                if not sender.send(s.records, s.indices, s.weights):
                    break  # the learner is gone; the orchestrator ends the run
                lim.sample(batch)
                self.sampled_total += batch
                served += 1
                busy = True
            self._commands(ch)
            if stats_tick.due():
                now = time.monotonic()
                t0, i0, s0 = last
                dt = max(now - t0, 1e-9)
                self._send_stats(ch, (inserted - i0) / dt, (self.sampled_total - s0) / dt,
                                 inserted)
                last = (now, inserted, self.sampled_total)
            if not busy:  # sleep until the learner answers or a simulator sends, not spin:
                # an answer frees room for a batch and, through the limiter, for inserts
                inbox.receive(timeout=0.005, also=() if sender.broken else (sender.waitable,))

    def _commands(self, ch: ReplayChannels) -> None:
        try:
            cmd = ch.commands.get_nowait()
        except queue.Empty:
            return
        if cmd[0] == "snapshot":
            path = Path(cmd[1])
            try:
                self.memory.save(path)
                send_nowait(ch.stats, ("replay_saved", "replay", 0, str(path)))
            except OSError as exc:
                send_nowait(ch.stats, ("log", "replay", 0, ("error", f"replay snapshot: {exc}")))

    def _send_stats(self, ch: ReplayChannels, insert_rate: float, sample_rate: float,
                    inserted: int) -> None:
        st = self.memory.stats()
        send_nowait(ch.stats, ("stats", "replay", 0, {
            "size": st.size,
            "capacity": st.capacity,
            "insert_rate": insert_rate,
            "sample_rate": sample_rate,
            "inserted": inserted,
            "sampled": self.sampled_total,
            "total_priority": float(st.total),
            "max_priority": float(st.max_priority),
            "mean_priority": float(st.mean_priority),
            "histogram": tuple(int(c) for c in st.histogram),
            "bin_edges": tuple(float(e) for e in st.bin_edges),
            "beta": self.beta(),
            "dropped": self.dropped,
            "waiting_insert": self.inbox is not None and self.inbox.pending() > 0,
        }))


def replay_main(cfg: Config, obs_dim: int, seed: int, ch: ReplayChannels,
                restore: str | None = None) -> None:
    """Process entry point (spawn)."""
    child_setup("d3q: replay", out_queues=(ch.stats,))
    code = 0
    try:
        ReplayService(cfg, obs_dim, seed, Path(restore) if restore else None).run(ch)
    except Exception as exc:
        send_nowait(ch.stats, ("fatal", "replay", 0, f"{type(exc).__name__}: {exc}"))
        code = 1
    flush_and_exit(code, (ch.stats,))
