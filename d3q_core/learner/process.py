"""Learner process: the one TensorFlow process. Reads sample batches from the replay's link,
trains, answers with |TD| priorities, publishes parameters, and writes checkpoints."""

from __future__ import annotations

import math
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from d3q_core.config import Config
from d3q_core.faults import fault
from d3q_core.params import ParamStore, SharedCounters
from d3q_core.proc import Ticker, child_setup, flush_and_exit, send_nowait
from d3q_core.qnet import QNetSpec
from d3q_core.replay.link import BatchReceiver, SampleLink


@dataclass
class LearnerChannels:
    link: SampleLink  # in: sample batches; out: their |TD| errors
    commands: Any  # in: ("checkpoint", reason) | ("stop", write_checkpoint: bool)
    stats: Any  # out: messages
    params: ParamStore
    counters: SharedCounters
    stop: Any  # Event: the whole run is over (leave without a checkpoint)
    pause: Any  # Event
    sample_batch: Any  # Value('i'): tells the replay the global batch size


# TensorFlow's settings in the learner process (and in the benches' isolated learner)
TF_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0",
                  "KERAS_BACKEND": "tensorflow"}


def _quiet_tensorflow() -> None:
    for key, value in TF_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


class Learner:
    def __init__(self, cfg: Config, spec: QNetSpec, ch: LearnerChannels, checkpoint_dir: Path,
                 resume_from: Path | None, threads: int):
        from d3q_core.learner.devices import configure_threads, make_strategy
        from d3q_core.learner.trainer import Trainer

        self.cfg, self.spec, self.ch = cfg, spec, ch
        self.checkpoint_dir = checkpoint_dir
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

    def _restore(self, path: Path) -> None:
        from d3q_core.checkpoint import load_checkpoint

        arrays, meta = load_checkpoint(path)
        self.trainer.load_state_arrays(arrays)
        self.samples = int(meta["learner_samples"])
        self.version_base = int(meta.get("version", 0))

    def publish(self) -> int:
        self.published_at_step = self.trainer.steps
        return self.ch.params.publish(self.trainer.get_flat(), self.samples,
                                      self.ch.counters.env_steps)

    def checkpoint(self, reason: str) -> Path | None:
        from d3q_core.checkpoint import save_checkpoint

        meta = {
            "version": self.ch.params.version,
            "learner_samples": self.samples,
            "learner_steps": self.trainer.steps,
            "env_steps": self.ch.counters.env_steps,
            "env_id": self.cfg.env.id,
            "spec": self.spec.to_dict(),
            "reason": reason,
            "saved_at": time.time(),
        }
        try:
            path = save_checkpoint(self.checkpoint_dir, self.trainer.state_arrays(), meta,
                                   keep=self.cfg.learner.keep_checkpoints)
        except OSError as exc:  # a full disk, say: end the run rather than train unsaved
            self.ch.stats.put(("fatal", "learner", 0, f"checkpoint failed: {exc}"))
            self.failed = True
            return None
        self.last_good = path
        self.ch.stats.put(("checkpoint", "learner", 0, {"path": str(path), "reason": reason,
                                                         "learner_samples": self.samples}))
        return path

    def run(self) -> int:
        ch = self.ch
        ch.sample_batch.value = self.trainer.call_batch
        ch.params.continue_from(self.version_base)
        self.publish()
        send_nowait(ch.stats, ("ready", "learner", 0, {
            "devices": list(self.devices), "replicas": self.trainer.replicas,
            "global_batch": self.trainer.global_batch,
        }))
        return self._loop(BatchReceiver(ch.link, self.trainer.record_dtype,
                                        self.trainer.call_batch))

    def _loop(self, batches: BatchReceiver) -> int:
        ch, lcfg = self.ch, self.cfg.learner
        sleep_per_step = fault("learner_sleep") or 0.0
        nan_after = fault("learner_nan_after")
        stats_tick, ckpt_tick = Ticker(0.5), Ticker(lcfg.checkpoint_seconds)
        wait_s = busy_s = 0.0
        samples_since = 0
        losses: list[float] = []
        qs: list[float] = []
        link_up = True  # False once the replay has gone: wait for the orchestrator's stop
        while not ch.stop.is_set():
            cmd = self._command()
            if cmd is not None:
                if cmd[0] == "stop":
                    if cmd[1]:
                        self.checkpoint("final")
                    return 1 if self.failed else 0
                if cmd[0] == "checkpoint":
                    self.checkpoint(cmd[1])
            if ch.pause.is_set() or not link_up:
                time.sleep(0.05)
                continue
            t0 = time.perf_counter()
            try:
                batch = batches.get(timeout=0.05)
            except (EOFError, OSError):
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
                ch.stats.put(("fatal", "learner", 0,
                              f"non-finite loss ({loss}) at {self.samples} learner samples; "
                              f"last good checkpoint: {where}"))
                return 3
            try:
                batches.answer(indices, td)
            except OSError:
                link_up = False
            self.samples += len(records)
            samples_since += len(records)
            ch.counters.set_learner(self.samples, self.trainer.steps)
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
                send_nowait(ch.stats, ("stats", "learner", 0, {
                    "samples": self.samples,
                    "steps": self.trainer.steps,
                    "samples_per_s": samples_since / total,
                    "loss": float(np.mean(losses)) if losses else float("nan"),
                    "mean_q": float(np.mean(qs)) if qs else float("nan"),
                    "wait_fraction": wait_s / total,
                    "replicas": self.trainer.replicas,
                    "version": ch.params.version,
                }))
                wait_s = busy_s = 0.0
                samples_since = 0
                losses, qs = [], []
        return 0

    def _command(self) -> tuple | None:
        try:
            return self.ch.commands.get_nowait()
        except queue.Empty:
            return None


def learner_main(cfg: Config, spec: QNetSpec, ch: LearnerChannels, checkpoint_dir: str,
                 resume_from: str | None, threads: int) -> None:
    """Process entry point (spawn)."""
    out = (ch.stats,)
    child_setup("d3q: learner", out_queues=out)
    _quiet_tensorflow()
    code = 1
    try:
        learner = Learner(cfg, spec, ch, Path(checkpoint_dir),
                          Path(resume_from) if resume_from else None, threads)
        code = learner.run()
    except Exception as exc:
        send_nowait(ch.stats, ("fatal", "learner", 0, f"{type(exc).__name__}: {exc}"))
    flush_and_exit(code, out)
