"""The orchestrator: one run, composed of a backend (where the roles run), a role plan (how
each is built), a supervisor (which deaths are restarted), the stop rules, the ordered
shutdown and the result. It folds the roles' messages into RunState and emits Snapshots.

It runs in the face's process (the TUI runs `run()` in a worker thread, headless in the main
thread), implements RunControl for the faces, and never imports TensorFlow.
"""

from __future__ import annotations

import errno
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from d3q_core import snapshot as snap
from d3q_core.algo.framememory import FrameLayout
from d3q_core.algo.networks import choose_network
from d3q_core.backends import make_backend, preflight
from d3q_core.config import Config, describe_preset, to_toml
from d3q_core.envs import inspect_env
from d3q_core.faults import check_environment
from d3q_core.roles import messages as m
from d3q_core.run.backend import Backend, RoleRecipe
from d3q_core.run.cores import learner_threads, simulator_count
from d3q_core.run.evalhistory import EvalHistory
from d3q_core.run.plan import RolePlan
from d3q_core.run.processrows import process_rows
from d3q_core.run.replaysnapshots import ReplaySnapshots
from d3q_core.run.resources import check_replay_fits
from d3q_core.run.result import RunResult, run_summary, save_best, write_result
from d3q_core.run.resumepoint import load_resume_point, resumed_evals, write_run_state
from d3q_core.run.runstate import RunState
from d3q_core.run.shutdown import stop_roles
from d3q_core.run.stoprules import (
    GOAL_WAIT_SECONDS,
    RunView,
    StallWatch,
    StartupWatch,
    stop_reason,
)
from d3q_core.run.supervision import RESTARTED_ROLES, Supervisor
from d3q_core.snapshot import EvalPoint, ProcessStats, Snapshot
from d3q_core.storage.rundir import RunDir
from d3q_core.storage.tensorboard import TensorBoardLog


class Orchestrator:
    def __init__(self, config: Config, run_dir: Path | None = None, resume: Path | None = None,
                 started_at: float | None = None,
                 backend_factory: Callable[..., Backend] = make_backend):
        self.config = config
        info = inspect_env(config.env.id, config.env.kwargs)
        goal = config.stop.goal if config.stop.goal is not None else info.reward_threshold
        # an env without a reward threshold (Atari) has no goal unless stop.goal sets one:
        # the run goes to its limits (infinity: no evaluation ever reaches it)
        self.goal = float(goal) if goal is not None else math.inf
        self.env_id = config.env.id
        self.spec = choose_network(info, config.learner)
        self.layout = FrameLayout(info.frame_shape, info.stack) if info.pixels else None
        self.n_simulators = simulator_count(config)
        self.replay_bytes = check_replay_fits(config, self.spec, self.layout,
                                              self.n_simulators)
        preflight(config)  # a cluster to join answers, before anything is made on disk
        self.faults, self._faults_line = check_environment()
        self.resume_checkpoint: Path | None = None
        self.resume_meta: dict = {}
        if resume is not None:
            self.rundir = RunDir.open_existing(resume)
            self.rundir.lock()
            self.resume_checkpoint, self.resume_meta = load_resume_point(
                self.rundir, self.env_id, self.spec)
        else:
            self.rundir = RunDir.create(Path(config.run.root), self.env_id, run_dir,
                                        Path(config.cluster.storage).expanduser()
                                        if config.cluster.storage else None)
            self.rundir.lock()
        self.rundir.write_config(config)
        self.run_dir = self.rundir.path
        self.checkpoints = self.rundir.checkpoints_target()  # the same on every node
        self.snapshots = ReplaySnapshots(config, self.checkpoints, self.replay_bytes)
        restore = self.snapshots.restore(self.layout, self.n_simulators) \
            if self.snapshots.enabled and self.resume_checkpoint else None  # before any Ray
        self.threads = learner_threads(config, self.n_simulators)
        self.backend = backend_factory(config, self.spec, self.n_simulators,
                                       output=str(self.rundir.log_path))
        backend_ready = time.time()  # a Ray backend's start-up is most of the wait so far
        self.flags, self.counters = self.backend.flags, self.backend.counters
        self.params = self.backend.params
        self.plan = RolePlan(config, self.spec, self.goal, self.n_simulators,
                             self.checkpoints, self.threads,
                             self.resume_checkpoint and
                             self.checkpoints / self.resume_checkpoint.name,
                             restore, self.layout)
        self.state = RunState(self.env_id, str(self.run_dir), self.goal,
                              started_at if started_at is not None else time.time(),
                              log_sink=self.rundir.append_log)
        self.roles = Supervisor(self.backend, config.stop, self._restart_recipe, self.log)
        self.stall = StallWatch(config.stop, self.log)
        self.startup = StartupWatch(config.stop, config.replay.min_size, self.log)
        # (role, index) -> monotonic time of its last message: by index, or one replay
        # shard that hangs would be hidden by the others
        self._heard: dict[tuple[str, int], float] = {}
        if self.resume_checkpoint is not None:
            meta = self.resume_meta
            self.counters.restore(int(meta.get("env_steps", 0)), int(meta["learner_samples"]),
                                  int(meta.get("learner_steps", 0)))
            records = resumed_evals(self.rundir, int(meta["learner_samples"]))
            self.state.evals = EvalHistory(EvalPoint(**e) for e in records)
        self._stop_request: str | None = None
        self._abort = False
        self._fatal: str | None = None
        self._checkpoint_request = threading.Event()
        self._attached: dict[str, int] = {}
        self._tb: TensorBoardLog | None = None
        self._tb_reported = False
        self._env_rate, self._rate = 0.0, (time.monotonic(), 0)
        self.tensorboard_url: str | None = None
        self.timeline: dict[str, float] = {  # seconds from command start to each milestone
            "backend_ready": round(backend_ready - self.state.started_at, 3)}
        self.peak_memory = 0

    # --- resume ------------------------------------------------------------------------------

    def _write_run_state(self) -> None:
        write_run_state(self.rundir, {"env_steps": self.counters.env_steps,
                                      "evaluations": self.state.evals.count,
                                      "checkpoint": self.state.last_checkpoint}, self.log)

    # --- RunControl: thread-safe controls for the faces ----------------------------------------

    def request_stop(self, reason: str = "quit") -> None:
        if self._stop_request is None:
            self._stop_request = reason

    def abort(self) -> None:
        self._abort = True
        self.request_stop("interrupted")
        self.flags.stop_sims.set()
        self.flags.stop_all.set()

    def request_checkpoint(self) -> None:
        self._checkpoint_request.set()

    def set_paused(self, paused: bool) -> None:
        (self.flags.pause.set if paused else self.flags.pause.clear)()
        self.log("paused" if paused else "resumed")

    @property
    def paused(self) -> bool:
        return self.flags.pause.is_set()

    def log(self, text: str, level: str = "info") -> None:
        self.state.log(text, level)

    def attach(self, role: str, pid: int) -> None:
        self._attached[role] = pid

    def detach(self, role: str) -> None:
        self._attached.pop(role, None)

    # --- the loop ----------------------------------------------------------------------------

    def _restart_recipe(self, role: str, index: int, incarnation: int) -> RoleRecipe:
        # an evaluator's next incarnation goes on from the newest parameters
        return self.plan.restart(role, index, incarnation, self.counters.learner_samples)

    def _start_roles(self) -> None:
        cfg, plan = self.config, self.plan
        self.roles.start(plan.learner())
        if plan.replay_restore is not None:
            self.log("restoring the replay memory from "
                     f"{', '.join(str(p) for p in plan.replay_restore)}")
        elif self.snapshots.partial:
            self.log(f"replay snapshots of only some shards ({self.snapshots.partial}): "
                     "resuming with empty replay memories", "warning")
        for recipe in plan.replays():
            self.roles.start(recipe)
        for i in range(self.n_simulators):
            self.roles.start(plan.simulator(i))
        self.roles.start(plan.evaluator(self.counters.learner_samples))
        if self.resume_checkpoint is not None:
            self.log(f"resumed from {self.resume_checkpoint} at "
                     f"{self.counters.learner_samples:,} learner samples")
        lo, hi = plan.epsilon_range()
        goal = f"goal {self.goal:g}" if math.isfinite(self.goal) else "no goal (runs to its limits)"
        self.log(f"{self.env_id}: {goal}; {self.n_simulators} simulator(s) x "
                 f"{cfg.simulators.envs_per_simulator} envs, epsilon {lo:.3f}..{hi:.2f}, "
                 f"learner on {cfg.learner.devices} ({self.threads} thread(s)); "
                 f"run dir {self.run_dir}")
        preset = describe_preset(cfg)
        if preset:
            self.log(preset)

    def run(self, on_snapshot: Callable[[Snapshot], None] | None = None) -> RunResult:
        """Blocking: runs until the goal, a limit, a stop request or a fatal fault."""
        self._tb = TensorBoardLog(self.rundir.tb, enabled=self.config.run.tensorboard)
        self._tb.text("config", "```\n" + to_toml(self.config) + "\n```")
        self._rate = (time.monotonic(), 0)
        if self._faults_line:
            self.log(self._faults_line, "warning")
        self._start_roles()
        self.state.phase = snap.PHASE_FILLING
        snap_period = 1.0 / self.config.run.snapshot_hz
        next_snap = next_tb = next_mem = 0.0
        try:
            while True:
                self._drain(timeout=0.02)
                self._supervise()
                self._check_disk()
                if self._checkpoint_request.is_set():
                    self._checkpoint_request.clear()
                    self._send("learner", m.Checkpoint("requested"))
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
                    self._track_memory()
        finally:
            result = self._shutdown(on_snapshot)
        return result

    def _supervise(self) -> None:
        flags, goal_reached = self.flags, self.state.goal_eval is not None

        def told_to_stop(role: str) -> bool:
            return flags.stop_all.is_set() or (
                flags.stop_sims.is_set() and role == "simulator") or (
                role == "learner" and goal_reached)

        def restarts_allowed(role: str) -> bool:
            if role == "simulator":
                return not flags.stop_sims.is_set()
            return not flags.stop_all.is_set() and not goal_reached  # the evaluator

        fatal = self.roles.check(told_to_stop, restarts_allowed)
        if fatal is not None:
            self._set_fatal(fatal)

    def _check_disk(self) -> None:
        """A full disk ends the run within a second, with one line naming the file, instead
        of training on with nothing saved."""
        tb, err = self._tb, self.rundir.write_error
        if tb is not None and tb.error is not None and not self._tb_reported:
            self._tb_reported = True
            if tb.disk_full:
                self._set_fatal(tb.error)
            else:
                self.log(f"TensorBoard events off: {tb.error}", "warning")
        if err is not None and err.errno == errno.ENOSPC and self._fatal is None:
            self._set_fatal(f"no space left on device writing {err.filename}")

    def _set_fatal(self, text: str) -> None:
        if self._fatal is None:
            self._fatal = text
            self.log(text, "error")

    def _stop_reason(self) -> str | None:
        st = self.state
        view = RunView(
            elapsed=st.elapsed(), learner_samples=self.counters.learner_samples,
            env_steps=self.counters.env_steps, fatal=self._fatal,
            stop_request=self._stop_request,
            goal_elapsed=st.goal_eval.elapsed if st.goal_eval else None,
            confirmed=st.confirmation is not None, learner_alive=self.roles.alive("learner"))
        reason = stop_reason(self.config.stop, view)
        if reason == "goal" and (st.confirmation is None or view.learner_alive):
            missing = "the confirmation" if st.confirmation is None else "the learner's exit"
            if st.confirmation is None:  # what tells a slow evaluator from a lost message
                heard = self._heard.get(("evaluator", 0))
                missing += (f" (evaluator {'running' if self.roles.alive('evaluator') else 'gone'}"
                            + (f", last heard {time.monotonic() - heard:.1f}s ago)"
                               if heard is not None else ", never heard)"))
            self.log(f"gave up waiting for {missing} after {GOAL_WAIT_SECONDS:.0f}s", "warning")
        if reason is not None or st.goal_eval is not None:
            return reason
        now, replay = time.monotonic(), st.replay_stats()
        started = st.learner_info is not None and self.flags.replay_ready.is_set()
        silent: dict[str, float] = {}  # role -> its longest-silent incarnation's silence
        for (role, _), t in self._heard.items():
            silent[role] = max(silent.get(role, 0.0), now - t)
        stalled = self.startup.check(now, started, st.learner_info is not None, replay,
                                     self.paused)
        stalled = stalled or self.stall.check(now, view.learner_samples,
                                              started and not self.paused
                                              and not self.snapshots.saving(now), replay,
                                              silent)
        st.stall = self.stall.stage or self.startup.stage
        if stalled is not None:
            self._set_fatal(stalled)
            return "stalled"
        return None

    def _warn_if_checkpoints_stay_on_a_node(self) -> None:
        """On a cluster without cluster.storage, a learner (or a replay shard, with
        replay.snapshot) on another node writes its checkpoints (snapshot) to that node's
        disk, where resume and evaluate on this one miss them."""
        if self.config.cluster.storage:
            return
        writers = [c for c in self.roles if c.role == "learner" or
                   (c.role == "replay" and self.snapshots.enabled)]
        away = sorted({f"{c.name} on {c.handle.node}" for c in writers
                       if c.handle.node not in ("head", "local", "?")})
        if away:
            self.log(f"{', '.join(away)}: checkpoints and snapshots go to {self.checkpoints} "
                     "on that node's disk; set cluster.storage to a folder every node mounts",
                     "warning")

    def _send(self, role: str, command: m.Command) -> None:
        if not self.backend.send(role, command):
            self.log(f"{role} command queue full; request dropped", "warning")

    def _drain(self, timeout: float) -> None:
        for envelope in self.backend.events(timeout):
            self._handle(envelope)

    def _handle(self, envelope: m.Envelope) -> None:
        role, index, msg = envelope.role, envelope.index, envelope.message
        st = self.state
        self._heard[(role, index)] = time.monotonic()
        if isinstance(msg, (m.SimulatorStats, m.ReplayStats, m.LearnerStats)):
            st.latest[(role, index)] = msg
            if isinstance(msg, m.LearnerStats) and msg.samples > 0:
                self._milestone("first_learner_stats")
        elif isinstance(msg, m.Log):
            self.log(f"{role}: {msg.text}", msg.level)
        elif isinstance(msg, m.LearnerReady):
            self._milestone("learner_ready")
            st.learner_info = msg
            self.log(f"learner ready on {', '.join(msg.devices)}: {msg.replicas} replica(s), "
                     f"global batch {msg.global_batch}")
            self._warn_if_checkpoints_stay_on_a_node()
        elif isinstance(msg, m.CheckpointSaved):
            st.last_checkpoint = msg.path
            self.log(f"checkpoint ({msg.reason}): {msg.path}")
            self._write_run_state()
            if self.snapshots.enabled:
                self.snapshots.request(self._send, final=msg.reason == "final")
        elif isinstance(msg, m.ReplaySaved):
            self.snapshots.saved(index, msg.number)
            if msg.error is None:
                self.log(f"replay memory saved: {msg.path}")
            else:
                self.log(f"replay snapshot {msg.path}: {msg.error}", "error")
        elif isinstance(msg, m.EvalResult):
            self._on_eval(msg)
        elif isinstance(msg, m.Confirmed):
            st.confirmation = msg
            self.log(f"confirmed score of v{msg.version}: mean {msg.mean:.1f} over "
                     f"{self.config.evaluation.confirm_episodes} episodes")
        elif isinstance(msg, m.Failed):
            if role in RESTARTED_ROLES:  # the supervisor restarts it once its process has gone
                self.log(f"{role} {index} failed: {msg.error}", "error")
            else:
                self._set_fatal(f"{role}: {msg.error}")

    def _on_eval(self, msg: m.EvalResult) -> None:
        st = self.state
        best_before = st.best_eval
        point = st.add_eval(msg)
        self.rundir.append_eval(asdict(point))
        self._milestone("first_eval")
        if self._tb is not None:
            self._tb.scalars({"eval/mean_return": point.mean, "eval/max_return": point.max},
                             point.learner_samples, point.env_steps)
        if best_before is None or point.mean > best_before:  # the chart shows every one
            self.log(f"new best eval v{point.version} @ {point.learner_samples:,} "
                     f"samples: mean {point.mean:.1f}, max {point.max:.0f}")
        if point.mean >= self.goal and st.goal_eval is None:
            st.goal_eval = point
            self.log(f"v{point.version} at the goal over {msg.episodes} greedy episodes: "
                     f"mean {point.mean:.1f}")
            self._milestone("goal")
            st.phase = snap.PHASE_CONFIRMING
            self.flags.stop_sims.set()
            self._send("learner", m.Stop(final_checkpoint=True))
            self.log(f"goal {self.goal:g} reached after {point.elapsed:.1f}s; confirming "
                     f"on {self.config.evaluation.confirm_episodes} fresh episodes")

    # --- shutdown ----------------------------------------------------------------------------

    def _shutdown(self, on_snapshot: Callable[[Snapshot], None] | None) -> RunResult:
        st = self.state
        st.phase = snap.PHASE_STOPPING
        learner_stop = None
        if st.goal_eval is None:
            learner_stop = m.Stop(final_checkpoint=st.stop_reason not in ("error", "stalled"))
        stop_roles(self.backend, self.roles, self._drain, learner_stop=learner_stop,
                   replay_seconds=self.snapshots.seconds,
                   replay_pending=self.snapshots.pending if self.snapshots.enabled
                   else None, abort=self._abort)
        for envelope in self.backend.last_events():
            self._handle(envelope)
        self._write_tb()  # the curves end with the run's last figures
        if st.last_checkpoint is not None:
            self._write_run_state()
        self.backend.close()
        result = self._result()
        st.phase = snap.PHASE_GOAL if result.solved else snap.PHASE_STOPPED
        self._emit(on_snapshot)
        if self._tb is not None:
            self._tb.close()
        self.rundir.unlock()
        return result

    def _result(self) -> RunResult:
        st = self.state
        if st.goal_eval is not None and st.confirmation is not None:
            save_best(self.rundir, st.confirmation, self.env_id, self.spec, self.log)
        summary = run_summary(
            st, self.config, env_id=self.env_id, goal=self.goal, error=self._fatal,
            learner_samples=self.counters.learner_samples, env_steps=self.counters.env_steps,
            simulators=self.n_simulators, roles=list(self.roles),
            resumed_from=self.resume_checkpoint, timeline=self.timeline,
            peak_memory=self.peak_memory)
        return write_result(self.rundir, summary, self._fatal, self.log)

    # --- telemetry ---------------------------------------------------------------------------

    def _process_rows(self) -> tuple[ProcessStats, ...]:
        return process_rows(self.state, self.roles, self._attached, self.backend.telemetry,
                            self.paused)

    def _emit(self, on_snapshot: Callable[[Snapshot], None] | None) -> None:
        st, ready = self.state, self.flags.replay_ready.is_set()
        if ready:
            self._milestone("replay_ready")
        if st.phase == snap.PHASE_FILLING and ready and st.learner_info is not None:
            st.phase = snap.PHASE_TRAINING
        now, steps = time.monotonic(), self.counters.env_steps
        t0, s0 = self._rate
        if now - t0 >= 0.5:
            self._env_rate = (steps - s0) / (now - t0)
            self._rate = (now, steps)
        if on_snapshot is None:
            return
        learner_devices = st.learner_info.devices if st.learner_info else ()
        devices = self.backend.telemetry.devices(learner_devices)
        on_snapshot(st.snapshot(devices=devices, processes=self._process_rows(),
                                env_steps=steps, env_steps_per_s=self._env_rate,
                                episodes=self.counters.episodes, paused=self.paused,
                                tensorboard_url=self.tensorboard_url))

    def _track_memory(self) -> None:
        here = self.backend.telemetry.here  # a pid names a process on its own node only
        pids = [c.handle.pid for c in self.roles
                if c.handle.is_alive() and c.handle.pid and c.handle.node == here]
        self.peak_memory = max(self.peak_memory,
                               self.backend.telemetry.total_memory([*pids, os.getpid()]))

    def _milestone(self, name: str) -> None:
        if name not in self.timeline:
            self.timeline[name] = round(self.state.elapsed(), 3)

    def _write_tb(self) -> None:
        if self._tb is None:
            return
        env_steps = self.counters.env_steps
        scalars = {**self.state.tensorboard_scalars(),
                   "simulators/env_steps_per_s": self._env_rate,
                   "simulators/env_steps": float(env_steps)}
        self._tb.scalars(scalars, self.counters.learner_samples, env_steps)
        self._tb.flush()  # to the file now: a full disk shows here within a second
