"""Learner role: the one TensorFlow role. Reads sample batches, trains, answers with |TD|
priorities, publishes parameters, and writes checkpoints."""

from __future__ import annotations

import math
import os
import time
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
        self.extra_meta: dict = {}
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

    def publish(self) -> int:
        ports = self._ports
        self.published_at_step = self.trainer.steps
        return ports.params.publish(self.trainer.get_flat(), self.samples,
                                    ports.counters.env_steps)

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
        try:
            path = save_checkpoint(self.checkpoint_dir, self.trainer.state_arrays(), meta,
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
        return self._loop(ports.samples)

    def _loop(self, batches: SampleBatchesIn) -> int:
        ports, lcfg = self._ports, self.cfg.learner
        sleep_per_step = fault("learner_sleep") or 0.0
        nan_after = fault("learner_nan_after")
        stats_tick, ckpt_tick = Ticker(0.5), Ticker(lcfg.checkpoint_seconds)
        wait_s = busy_s = 0.0
        samples_since = 0
        losses: list[float] = []
        qs: list[float] = []
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
            t0 = time.perf_counter()
            try:
                batch = batches.get(timeout=0.05)
            except PEER_GONE:
                link_up = False
                continue
            if batch is None:
                wait_s += time.perf_counter() - t0
                continue
            records, indices, weights = batch  # views into the link's buffer
            t1 = time.perf_counter()
            td, loss, mean_q = self.trainer.train_records(records, weights)
            if sleep_per_step:
                time.sleep(sleep_per_step)
            if nan_after is not None and self.trainer.steps >= nan_after:
                loss = float("nan")
            if not math.isfinite(loss):
                where = self.last_good or "none yet"
                ports.events.emit(Failed(f"non-finite loss ({loss}) at {self.samples} learner "
                                      f"samples; last good checkpoint: {where}"), wait=True)
                return 3
            try:
                batches.answer(indices, td)
            except PEER_GONE:
                link_up = False
            self.samples += len(records)
            samples_since += len(records)
            ports.counters.set_learner(self.samples, self.trainer.steps)
            losses.append(loss)
            qs.append(mean_q)
            if self.trainer.steps - self.published_at_step >= lcfg.publish_every:
                self.publish()
            busy_s += time.perf_counter() - t1
            wait_s += t1 - t0
            if ckpt_tick.due() and self.checkpoint("periodic") is None:
                return 1
            if stats_tick.due():
                total = max(busy_s + wait_s, 1e-9)
                ports.events.emit(LearnerStats(
                    samples=self.samples,
                    steps=self.trainer.steps,
                    samples_per_s=samples_since / total,
                    loss=float(np.mean(losses)) if losses else float("nan"),
                    mean_q=float(np.mean(qs)) if qs else float("nan"),
                    replicas=self.trainer.replicas,
                    param_version=ports.params.version,
                    wait_fraction=wait_s / total,
                ))
                wait_s = busy_s = 0.0
                samples_since = 0
                losses, qs = [], []
        return 0
