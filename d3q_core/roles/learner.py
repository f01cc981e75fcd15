"""Learner role: the one TensorFlow role. Reads sample batches, trains, answers with |TD|
priorities, publishes parameters, and writes checkpoints."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from d3q_core.algo.qnet import QNetSpec
from d3q_core.config import Config
from d3q_core.faults import fault
from d3q_core.roles.messages import (
    Checkpoint,
    CheckpointSaved,
    Failed,
    LearnerReady,
    LearnerStats,
    Stop,
)
from d3q_core.roles.ports import PEER_GONE, LearnerPorts, SampleBatchesIn
from d3q_core.ticker import Ticker

# TensorFlow's settings in the learner process (and in the benches' isolated learner)
TF_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0",
                  "KERAS_BACKEND": "tensorflow"}


def _quiet_tensorflow() -> None:
    for key, value in TF_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


@dataclass
class StatsWindow:
    """What the learner did since its last stats message."""

    samples: int = 0
    busy_s: float = 0.0
    wait_s: float = 0.0
    losses: list[float] = field(default_factory=list)
    qs: list[float] = field(default_factory=list)

    def stats(self, samples: int, steps: int, replicas: int, version: int) -> LearnerStats:
        """The message for this window, which starts a new one."""
        total = max(self.busy_s + self.wait_s, 1e-9)
        out = LearnerStats(
            samples=samples, steps=steps, samples_per_s=self.samples / total,
            loss=float(np.mean(self.losses)) if self.losses else float("nan"),
            mean_q=float(np.mean(self.qs)) if self.qs else float("nan"),
            replicas=replicas, param_version=version, wait_fraction=self.wait_s / total)
        self.samples, self.busy_s, self.wait_s, self.losses, self.qs = 0, 0.0, 0.0, [], []
        return out


class NonFinite(Exception):
    """Weights, optimizer state or the loss hold NaN or inf: the run ends, the last good
    checkpoint is kept."""


class Learner:
    """Built where it runs: the constructor starts TensorFlow (threads, strategy, model)."""

    def __init__(self, cfg: Config, spec: QNetSpec, checkpoint_dir: str | Path,
                 resume_from: str | Path | None, threads: int):
        _quiet_tensorflow()
        from d3q_core.algo.devices import configure_threads, make_strategy
        from d3q_core.algo.trainer import Trainer

        self.cfg, self.spec = cfg, spec
        self.checkpoint_dir = Path(checkpoint_dir)
        resume_from = Path(resume_from) if resume_from else None
        configure_threads(threads)
        self.strategy, self.devices = make_strategy(cfg.learner.devices)
        self.trainer = Trainer(spec, cfg.learner, self.strategy, seed=cfg.run.seed)
        self.samples = 0
        self.version_base = 0
        self.published_at_step = 0
        self._nan_weights_after = fault("learner_nan_weights_after")
        if resume_from is not None:
            self._restore(resume_from)
        self.last_good: Path | None = resume_from
        self.failed = False
        self.ports: LearnerPorts | None = None  # given by run()

    def _restore(self, path: Path) -> None:
        from d3q_core.storage.checkpoint import load_checkpoint

        arrays, meta = load_checkpoint(path)
        self.trainer.load_state_arrays(arrays)
        self.samples = int(meta["learner_samples"])
        self.version_base = int(meta.get("version", 0))

    @property
    def _ports(self) -> LearnerPorts:
        assert self.ports is not None, "run(ports) first"
        return self.ports

    def _nonfinite(self, what: str) -> NonFinite:
        where = self.last_good or "none yet"
        return NonFinite(f"non-finite {what} at {self.samples} learner samples; "
                         f"last good checkpoint: {where}")

    def publish(self) -> int:
        """Never hands out weights that hold NaN or inf: the actors would act on garbage and
        price every transition with it."""
        ports = self._ports
        flat = self.trainer.get_flat()
        nan_weights = self._nan_weights_after
        if nan_weights is not None and self.trainer.steps >= nan_weights and self.last_good:
            flat = np.full_like(flat, np.nan)
        if not np.isfinite(flat).all():
            raise self._nonfinite("weights")
        self.published_at_step = self.trainer.steps
        return ports.params.publish(flat, self.samples, ports.counters.env_steps)

    def checkpoint(self, reason: str) -> Path | None:
        from d3q_core.storage.checkpoint import save_checkpoint

        ports = self._ports
        meta = {
            "version": ports.params.version,
            "learner_samples": self.samples,
            "learner_steps": self.trainer.steps,
            "env_steps": ports.counters.env_steps,
            "env_id": self.cfg.env.id,
            "spec": self.spec.to_dict(),
            "reason": reason,
            "saved_at": time.time(),
        }
        arrays = self.trainer.state_arrays()
        if not all(np.isfinite(a).all() for a in arrays.values()
                   if np.issubdtype(a.dtype, np.floating)):
            raise self._nonfinite("weights or optimizer state")  # the last good one stays
        try:
            path = save_checkpoint(self.checkpoint_dir, arrays, meta,
                                   keep=self.cfg.learner.keep_checkpoints)
        except OSError as exc:  # a full disk, say: end the run rather than train unsaved
            ports.events.emit(Failed(f"checkpoint failed: {exc}"), wait=True)
            self.failed = True
            return None
        self.last_good = path
        ports.events.emit(CheckpointSaved(str(path), reason, self.samples), wait=True)
        return path

    def run(self, ports: LearnerPorts) -> int:
        self.ports = ports
        ports.call_batch.value = self.trainer.call_batch
        ports.params.continue_from(self.version_base)
        self.publish()
        ports.events.emit(LearnerReady(tuple(self.devices), self.trainer.replicas,
                                       self.trainer.global_batch))
        try:
            return self._loop(ports.samples)
        except NonFinite as exc:  # nothing is published or saved from here on
            ports.events.emit(Failed(str(exc)), wait=True)
            return 3

    def _loop(self, batches: SampleBatchesIn) -> int:
        ports, lcfg = self._ports, self.cfg.learner
        sleep_per_step = fault("learner_sleep") or 0.0
        nan_after = fault("learner_nan_after")
        stats_tick, ckpt_tick = Ticker(0.5), Ticker(lcfg.checkpoint_seconds)
        acc = StatsWindow()
        link_up = True  # False once the replay has gone: wait for the orchestrator's stop
        while not ports.stop.is_set():
            cmd = ports.commands.poll()
            if isinstance(cmd, Stop):
                if cmd.final_checkpoint:
                    self.checkpoint("final")
                return 1 if self.failed else 0
            if isinstance(cmd, Checkpoint):
                self.checkpoint(cmd.reason)
            if ports.pause.is_set() or not link_up:
                time.sleep(0.05)
                continue
            if stats_tick.due():  # waiting for batches or not: a silent learner is stuck
                ports.events.emit(acc.stats(self.samples, self.trainer.steps,
                                            self.trainer.replicas, ports.params.version))
            t0 = time.perf_counter()
            try:
                batch = batches.get(timeout=0.05)
            except PEER_GONE:
                link_up = False
                continue
            if batch is None:
                acc.wait_s += time.perf_counter() - t0
                continue
            records, indices, weights = batch  # views into the link's buffer
            t1 = time.perf_counter()
            td, loss, mean_q = self.trainer.train_records(records, weights)
            if sleep_per_step:
                time.sleep(sleep_per_step)
            if nan_after is not None and self.trainer.steps >= nan_after and self.last_good:
                loss = float("nan")
            if not math.isfinite(loss):
                raise self._nonfinite(f"loss ({loss})")
            try:
                batches.answer(indices, td)
            except PEER_GONE:
                link_up = False
            self.samples += len(records)
            acc.samples += len(records)
            ports.counters.set_learner(self.samples, self.trainer.steps)
            acc.losses.append(loss)
            acc.qs.append(mean_q)
            if self.trainer.steps - self.published_at_step >= lcfg.publish_every:
                self.publish()
            acc.busy_s += time.perf_counter() - t1
            acc.wait_s += t1 - t0
            if ckpt_tick.due() and self.checkpoint("periodic") is None:
                return 1
        return 0
