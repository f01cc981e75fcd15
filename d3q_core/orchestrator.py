"""The orchestrator: spawns and supervises every process, owns the queues, enforces the stop
rules, emits Snapshots, and shuts down leaving no process behind.

It runs in the face's process (the TUI runs `run()` in a worker thread, headless in the main
thread) and never imports TensorFlow. Supervision (restarts, stop rules, the stall watchdog)
and shutdown (ordered stop, last messages, result.json) live in their own modules as mixins.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from d3q_core import snapshot as snap
from d3q_core.atomic import write_text_atomic
from d3q_core.checkpoint import (
    CheckpointError,
    check_compatible,
    load_checkpoint,
    newest_checkpoint,
)
from d3q_core.config import Config, to_toml
from d3q_core.cores import learner_threads, simulator_count, usable_cores  # noqa: F401
from d3q_core.envs import EnvError, inspect_env
from d3q_core.evaluation import EvaluatorChannels, evaluator_main
from d3q_core.learner.process import LearnerChannels, learner_main
from d3q_core.params import ParamStore, SharedCounters
from d3q_core.proc import spawn_context
from d3q_core.qnet import QNetSpec
from d3q_core.replay.inbox import InboxAddress
from d3q_core.replay.link import SampleLink
from d3q_core.replay.service import ReplayChannels, replay_main
from d3q_core.rundir import RunDir, TensorBoardLog
from d3q_core.runstate import Confirmation, RunState
from d3q_core.shutdown import (  # noqa: F401  (re-exported for the faces)
    EXIT_BAD_INPUT,
    EXIT_GOAL,
    EXIT_INTERRUPTED,
    EXIT_LIMIT,
    RunResult,
    Shutdown,
)
from d3q_core.simulator import SimulatorChannels, simulator_epsilons, simulator_main
from d3q_core.snapshot import EvalPoint, ProcessStats, Snapshot
from d3q_core.supervision import Supervision
from d3q_core.telemetry import DeviceSampler, ProcessSampler


@dataclass
class Child:
    role: str
    index: int
    process: Any
    restarts: int = 0
    state: str = "starting"
    restart_times: deque = field(default_factory=lambda: deque(maxlen=64))


class Orchestrator(Supervision, Shutdown):
    def __init__(self, config: Config, run_dir: Path | None = None, resume: Path | None = None,
                 started_at: float | None = None):
        self.config = config
        info = inspect_env(config.env.id)
        goal = config.stop.goal if config.stop.goal is not None else info.reward_threshold
        if goal is None:
            raise EnvError(f"stop.goal: {config.env.id!r} has no reward_threshold; set stop.goal")
        self.goal = float(goal)
        self.env_id = config.env.id
        self.spec = QNetSpec(info.obs_dim, info.n_actions, tuple(config.learner.hidden),
                             config.learner.dueling)
        self.resume_checkpoint: Path | None = None
        self.resume_meta: dict = {}
        if resume is not None:
            self.rundir = RunDir.open_existing(resume)
            self._load_resume_point()
        else:
            self.rundir = RunDir.create(Path(config.run.root), self.env_id, run_dir)
        self.rundir.write_config(config)
        self.run_dir = self.rundir.path
        self.replay_snapshot_path = self.rundir.checkpoints / "replay.npz"
        self.n_simulators = simulator_count(config)
        self.ctx = spawn_context()
        self.params = ParamStore(self.ctx, self.spec.n_params)
        self.counters = SharedCounters(self.ctx, self.n_simulators)
        self.state = RunState(self.env_id, str(self.run_dir), self.goal,
                              started_at if started_at is not None else time.time(),
                              log_sink=self.rundir.append_log)
        if self.resume_checkpoint is not None:
            m = self.resume_meta
            self.counters.restore(int(m.get("env_steps", 0)), int(m["learner_samples"]),
                                  int(m.get("learner_steps", 0)))
            self.state.evals = [EvalPoint(**e) for e in self._read_run_state().get("evals", [])]
        self._checkpoint_samples = int(self.resume_meta.get("learner_samples", 0))
        self._replay_saved = threading.Event()
        self._stop_request: str | None = None
        self._abort = False
        self._checkpoint_request = threading.Event()
        self._paused = False
        self._attached: dict[str, int] = {}
        self.children: list[Child] = []
        self.tensorboard_url: str | None = None
        self.timeline: dict[str, float] = {}  # seconds from command start to each milestone
        self.peak_memory = 0

    def _load_resume_point(self) -> None:
        ckpt = newest_checkpoint(self.rundir.path)
        if ckpt is None:
            raise CheckpointError(f"{self.rundir.checkpoints}: no loadable checkpoint to resume")
        _, meta = load_checkpoint(ckpt)
        check_compatible(meta, self.env_id, self.spec, path=ckpt)
        self.resume_checkpoint, self.resume_meta = ckpt, meta

    def _read_run_state(self) -> dict:
        try:
            return json.loads((self.rundir.path / "run_state.json").read_text())
        except (OSError, ValueError):
            return {}

    def _write_run_state(self) -> None:
        """What the learner's checkpoint does not know: the evaluation history, up to the
        checkpoint's learner samples, so a resumed run's history has no evaluations of
        parameters it never had. Written at each checkpoint and once more at shutdown,
        since an evaluation can finish after the final checkpoint."""
        evals = [e.__dict__ for e in self.state.evals
                 if e.learner_samples <= self._checkpoint_samples]
        state = {"evals": evals,
                 "env_steps": self.counters.env_steps,
                 "checkpoint": self.state.last_checkpoint}
        try:
            write_text_atomic(self.rundir.path / "run_state.json", json.dumps(state))
        except OSError as exc:
            self.log(f"cannot write run_state.json: {exc}", "error")

    # --- thread-safe controls for the faces --------------------------------------------------

    def request_stop(self, reason: str = "quit") -> None:
        if self._stop_request is None:
            self._stop_request = reason

    def abort(self) -> None:
        """Stop at once (a second Ctrl-C): no final checkpoint, children terminated."""
        self._abort = True
        self.request_stop("interrupted")
        if hasattr(self, "stop_all"):
            self.stop_sims.set()
            self.stop_all.set()

    def request_checkpoint(self) -> None:
        self._checkpoint_request.set()

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        if hasattr(self, "pause"):
            (self.pause.set if paused else self.pause.clear)()
        self.log("paused" if paused else "resumed")

    @property
    def paused(self) -> bool:
        return self._paused

    def log(self, text: str, level: str = "info") -> None:
        self.state.log(text, level)

    def attach(self, role: str, pid: int) -> None:
        self._attached[role] = pid

    def detach(self, role: str) -> None:
        self._attached.pop(role, None)

    # --- processes ---------------------------------------------------------------------------

    def _make_channels(self) -> None:
        ctx = self.ctx
        self.stop_all = ctx.Event()  # every process leaves
        self.stop_sims = ctx.Event()  # simulators leave (shutdown step 1)
        self.pause = ctx.Event()
        if self._paused:
            self.pause.set()
        self.replay_ready = ctx.Event()
        self.sample_batch = ctx.Value("i", 0)
        self.inbox_address = InboxAddress.new()  # the replay listens; a socket per simulator
        self.sample_link = SampleLink.new(ctx)  # replay <-> learner, closed here once both run
        self.q_stats = ctx.Queue(maxsize=4096)
        self.q_learner_cmd = ctx.Queue(maxsize=16)
        self.q_replay_cmd = ctx.Queue(maxsize=16)

    def _spawn(self, role: str, index: int, target: Callable, args: tuple) -> Any:
        p = self.ctx.Process(target=target, args=args, name=f"d3q-{role}-{index}", daemon=True)
        p.start()
        return p

    def _start_simulator(self, index: int, incarnation: int = 0) -> Any:
        ch = SimulatorChannels(self.inbox_address, self.q_stats, self.params, self.counters,
                               self.stop_sims, self.pause, self.replay_ready)
        seed = self.config.run.seed * 1000 + index * 97 + 1
        return self._spawn("simulator", index, simulator_main,
                           (self.config, self.spec, index, self.n_simulators, seed, ch,
                            incarnation, self.resume_checkpoint is not None))

    def _start_all(self) -> None:
        cfg = self.config
        self._make_channels()
        replay_ch = ReplayChannels(self.inbox_address, self.sample_link, self.q_replay_cmd,
                                   self.q_stats, self.stop_all, self.replay_ready,
                                   self.sample_batch)
        learner_ch = LearnerChannels(self.sample_link, self.q_learner_cmd,
                                     self.q_stats, self.params, self.counters, self.stop_all,
                                     self.pause, self.sample_batch)
        eval_ch = EvaluatorChannels(self.q_stats, self.params, self.stop_all)
        threads = learner_threads(cfg, self.n_simulators)
        resume = str(self.resume_checkpoint) if self.resume_checkpoint else None
        self.children.append(Child("learner", 0, self._spawn(
            "learner", 0, learner_main,
            (cfg, self.spec, learner_ch, str(self.rundir.checkpoints), resume, threads))))
        restore = None
        if cfg.replay.snapshot and self.resume_checkpoint and self.replay_snapshot_path.is_file():
            restore = str(self.replay_snapshot_path)
            self.log(f"restoring the replay memory from {restore}")
        self.children.append(Child("replay", 0, self._spawn(
            "replay", 0, replay_main, (cfg, self.spec.obs_dim, cfg.run.seed, replay_ch,
                                       restore))))
        # both ends now live in the learner and the replay: with no copy left here, either
        # one's death is EOF or a broken pipe to the other, never a wait that does not end
        self.sample_link.close()
        for i in range(self.n_simulators):
            self.children.append(Child("simulator", i, self._start_simulator(i)))
        self.children.append(Child("evaluator", 0, self._spawn(
            "evaluator", 0, evaluator_main,
            (cfg, self.spec, self.goal, eval_ch, self.counters.learner_samples))))
        if self.resume_checkpoint is not None:
            self.log(f"resumed from {self.resume_checkpoint} at "
                     f"{self.counters.learner_samples:,} learner samples")
        eps = [simulator_epsilons(cfg, i, self.n_simulators) for i in range(self.n_simulators)]
        lo, hi = min(e.min() for e in eps), max(e.max() for e in eps)
        self.log(f"{self.env_id}: goal {self.goal:g}; {self.n_simulators} simulator(s) x "
                 f"{cfg.simulators.envs_per_simulator} envs, epsilon {lo:.3f}..{hi:.2f}, "
                 f"learner on {cfg.learner.devices} ({threads} thread(s)); run dir {self.run_dir}")

    # --- the loop ----------------------------------------------------------------------------

    def run(self, on_snapshot: Callable[[Snapshot], None] | None = None) -> RunResult:
        """Blocking: runs until the goal, a limit, a stop request or a fatal fault."""
        self._tb = TensorBoardLog(self.rundir.tb, enabled=self.config.run.tensorboard)
        self._tb.text("config", "```\n" + to_toml(self.config) + "\n```")
        self._devices = DeviceSampler()
        self._procs = ProcessSampler()
        self._fatal: str | None = None
        self._rate = (time.monotonic(), 0)
        self._env_rate = 0.0
        self._progress = (time.monotonic(), 0)
        self._start_all()
        self.state.phase = snap.PHASE_FILLING
        snap_period = 1.0 / self.config.run.snapshot_hz
        next_snap = next_tb = next_mem = 0.0
        try:
            while True:
                self._drain(timeout=0.02)
                self._supervise()
                if self._checkpoint_request.is_set():
                    self._checkpoint_request.clear()
                    self._send_learner(("checkpoint", "requested"))
                reason = self._stop_reason()
                if reason is not None:
                    self.state.stop_reason = reason
                    break
                now = time.monotonic()
                if now >= next_snap:
                    next_snap = now + snap_period
                    self._emit(on_snapshot)
                if now >= next_tb:
                    next_tb = now + 1.0
                    self._write_tb()
                if now >= next_mem:  # PSS reads every mapping of TF's process: not often
                    next_mem = now + 3.0
                    self._track_milestones_and_memory()
        finally:
            result = self._shutdown(on_snapshot)
        return result

    def _send_learner(self, cmd: tuple) -> None:
        try:
            self.q_learner_cmd.put(cmd, timeout=1.0)
        except queue.Full:
            self.log("learner command queue full; request dropped", "warning")

    def _drain(self, timeout: float) -> None:
        try:
            msg = self.q_stats.get(timeout=timeout)
        except queue.Empty:
            return
        for _ in range(1000):
            self._handle(msg)
            try:
                msg = self.q_stats.get_nowait()
            except queue.Empty:
                return

    def _handle(self, msg: tuple) -> None:
        kind, role, index, payload = msg
        st = self.state
        if kind == "stats":
            st.latest[(role, index)] = payload
            if role == "learner" and payload.get("samples", 0) > 0:
                self._milestone("first_learner_stats")
        elif kind == "log":
            level, text = payload
            self.log(f"{role}: {text}", level)
        elif kind == "ready":
            self._milestone("learner_ready")
            st.learner_info = payload
            self.log(f"learner ready on {', '.join(payload['devices'])}: "
                     f"{payload['replicas']} replica(s), global batch {payload['global_batch']}")
        elif kind == "checkpoint":
            st.last_checkpoint = payload["path"]
            self._checkpoint_samples = int(payload["learner_samples"])
            self.log(f"checkpoint ({payload['reason']}): {payload['path']}")
            self._write_run_state()
            if self.config.replay.snapshot:
                self._replay_saved.clear()
                try:
                    self.q_replay_cmd.put_nowait(("snapshot", str(self.replay_snapshot_path)))
                except queue.Full:
                    pass
        elif kind == "replay_saved":
            self._replay_saved.set()
            self.log(f"replay memory saved: {payload}")
        elif kind == "eval":
            best_before = st.best_eval
            point = st.add_eval(payload)
            self._milestone("first_eval")
            self._tb.scalar("eval/mean_return", point.mean, point.learner_samples)
            self._tb.scalar("eval/max_return", point.max, point.learner_samples)
            if best_before is None or point.mean > best_before:  # the chart shows every one
                self.log(f"new best eval v{point.version} @ {point.learner_samples:,} "
                         f"samples: mean {point.mean:.1f}, max {point.max:.0f}")
            if point.mean >= self.goal and st.goal_eval is None:
                st.goal_eval = point
                self.log(f"v{point.version} at the goal over {payload.get('episodes', '?')} "
                         f"greedy episodes: mean {point.mean:.1f}")
                self._milestone("goal")
                st.phase = snap.PHASE_CONFIRMING
                self.stop_sims.set()
                self._send_learner(("stop", True))
                self.log(f"goal {self.goal:g} reached after {point.elapsed:.1f}s; confirming "
                         f"on {self.config.evaluation.confirm_episodes} fresh episodes")
        elif kind == "confirm":
            st.confirmation = Confirmation(payload["version"], payload["learner_samples"],
                                           payload["env_steps"], payload["mean"],
                                           payload["min"], payload["weights"])
            self.log(f"confirmed score of v{payload['version']}: mean {payload['mean']:.1f} "
                     f"over {self.config.evaluation.confirm_episodes} episodes")
        elif kind == "error":
            self.log(f"{role} {index} failed: {payload}", "error")
        elif kind == "fatal":
            self._fatal = f"{role}: {payload}"
            self.log(self._fatal, "error")

    def _child(self, role: str, index: int = 0) -> Child:
        return next(c for c in self.children if c.role == role and c.index == index)

    # --- telemetry ---------------------------------------------------------------------------

    def _process_rows(self) -> tuple[ProcessStats, ...]:
        pids = {(c.role, c.index): c.process.pid for c in self.children if c.process.pid}
        pids[("orchestrator", 0)] = os.getpid()
        for role, pid in self._attached.items():
            pids[(role, 0)] = pid
        load = self._procs.sample(pids)
        rows = [self._row("orchestrator", 0, os.getpid(), "running", 0, load)]
        for c in self.children:
            state = "paused" if self._paused and c.state == "running" else c.state
            rows.append(self._row(c.role, c.index, c.process.pid, state, c.restarts, load))
        for role, pid in self._attached.items():
            rows.append(self._row(role, 0, pid, "running", 0, load))
        return tuple(rows)

    def _row(self, role: str, index: int, pid: int | None, state: str, restarts: int,
             load: dict) -> ProcessStats:
        s = self.state.stats(role, index)
        rate, unit, detail = 0.0, "", ""
        if role == "simulator":
            rate, unit = s.get("steps_per_s", 0.0), "steps/s"
            if "epsilon" in s:
                detail = f"eps {s['epsilon']:.2f}"
        elif role == "learner":
            rate, unit = s.get("samples_per_s", 0.0), "samples/s"
        elif role == "replay":
            rate, unit = s.get("sample_rate", 0.0), "samples/s"
        cpu, rss = load.get((role, index), (0.0, 0))
        return ProcessStats(role, index, pid, state, rate, unit, cpu, rss, restarts, detail)

    def _emit(self, on_snapshot: Callable[[Snapshot], None] | None) -> None:
        st = self.state
        if self.replay_ready.is_set():
            self._milestone("replay_ready")
        if st.phase == snap.PHASE_FILLING and self.replay_ready.is_set() and st.learner_info:
            st.phase = snap.PHASE_TRAINING
        now, steps = time.monotonic(), self.counters.env_steps
        t0, s0 = self._rate
        if now - t0 >= 0.5:
            self._env_rate = (steps - s0) / (now - t0)
            self._rate = (now, steps)
        if on_snapshot is None:
            return
        info = st.learner_info
        devices = self._devices.sample(learner_devices=tuple(info.get("devices", ())))
        on_snapshot(st.snapshot(devices=devices, processes=self._process_rows(),
                                env_steps=steps, env_steps_per_s=self._env_rate,
                                episodes=self.counters.episodes, paused=self._paused,
                                tensorboard_url=self.tensorboard_url))

    def _track_milestones_and_memory(self) -> None:
        pids = [c.process.pid for c in self.children if c.process.is_alive()] + [os.getpid()]
        self.peak_memory = max(self.peak_memory, ProcessSampler.total_memory(pids))

    def _milestone(self, name: str) -> None:
        if name not in self.timeline:
            self.timeline[name] = round(self.state.elapsed(), 3)

    def _write_tb(self) -> None:
        step = self.counters.learner_samples
        for tag, value in self.state.tensorboard_scalars().items():
            self._tb.scalar(tag, value, step)
        self._tb.scalar("simulators/env_steps_per_s", self._env_rate, step)
        self._tb.scalar("simulators/env_steps", float(self.counters.env_steps), step)
