"""A fake orchestrator with the real one's API, driven by a deterministic stream of plausible
Snapshots, so the dashboard can be tested (and screenshotted) without any training."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from d3q_core import snapshot as snap
from d3q_core.algo.qnet import QNetSpec
from d3q_core.snapshot import (
    DeviceStats,
    EvalPoint,
    GpuStats,
    LearnerStats,
    LogLine,
    NodeDevices,
    ProcessStats,
    ReplayStats,
    Snapshot,
)

RUN_DIR = "runs/20261124-160000-CartPole-v1"
MiB, GiB = 2**20, 2**30


def _log_lines(t: int) -> tuple[LogLine, ...]:
    """What a run logs in its first t quarter-seconds; the newest 30 (as the real one)."""
    lines = [(0.0, "info", f"CartPole-v1: goal 475; 2 simulator(s) x 32 envs; learner on cpu "
                           f"(1 thread); run dir {RUN_DIR}")]
    if t >= 8:
        lines.append((2.0, "info", "replay holds 5.0k transitions: training starts"))
    for k in range(max(0, (25_600 * t) // 20_480)):
        e = _eval(k)
        lines.append((e.elapsed, "info", f"eval {k + 1}: mean {e.mean:.1f} max {e.max:.0f} "
                                         f"(v{e.version}, {e.learner_samples:,} samples)"))
        if k % 10 == 9:
            lines.append((e.elapsed, "info", f"checkpoint {RUN_DIR}/checkpoints/"
                                             f"ckpt-{e.learner_samples:012d}.npz"))
    if t > 20:
        lines.append((5.25, "warning", "simulator 1 exited (code -9); restarted (1 restart)"))
    lines.sort(key=lambda x: x[0])  # stable: numbering never changes as lines are added
    return tuple(LogLine(i + 1, e, lv, text) for i, (e, lv, text) in enumerate(lines))[-30:]


def _eval(k: int) -> EvalPoint:
    return EvalPoint(learner_samples=20_480 * (k + 1), env_steps=2_600 * (k + 1),
                     version=20 * (k + 1),
                     mean=min(500.0, 9 + 480 * (1 - math.exp(-k / 14)) + 20 * math.sin(k)),
                     max=min(500.0, 20 + 500 * (1 - math.exp(-k / 9))), min=9.0,
                     elapsed=math.ceil((k + 1) * 0.8) / 4)


def make_snapshot(t: int, goal: float = 475.0, gpus: bool = False, cores: int = 2,
                  cluster: bool = False) -> Snapshot:
    """The run as it looks after t quarter-seconds: deterministic, no randomness. `cluster`:
    on a Ray cluster, the simulators on a second node."""
    samples = 25_600 * t
    evals = tuple(_eval(k) for k in range(max(0, samples // 20_480)))
    phase = snap.PHASE_STARTING if t < 2 else snap.PHASE_FILLING if t < 8 else snap.PHASE_TRAINING
    wave = 0.5 + 0.5 * math.sin(t / 3)
    hist = tuple(int(900 * math.exp(-((i - 13 - 2 * wave) / 4.0) ** 2)) for i in range(24))
    edges = tuple(0.016 * (12 / 0.016) ** (i / 24) for i in range(25))
    gpu_rows = tuple(GpuStats(i, "NVIDIA H100 80GB HBM3", 60.0 + 10 * i + 20 * wave,
                              (9 + i) * GiB, 80 * GiB, 54.0 + i, 312.0 - 11 * i)
                     for i in range(2)) if gpus else ()
    cpu = tuple(min(100.0, 55 + 40 * abs(math.sin(t / 4 + c))) for c in range(cores))
    sims = tuple(ProcessStats("simulator", i, 1003 + i, "running", 6_500.0 + 300 * i, "steps/s",
                              48.0 + 3 * i, 44 * MiB, restarts=1 if i == 1 and t > 20 else 0,
                              detail=f"eps {0.4 ** (1 + 7 * i / 2):.3f}",
                              node="node 1" if cluster else "local")
                 for i in range(2))
    here = "head" if cluster else "local"
    procs = (
        ProcessStats("orchestrator", 0, 1000, "running", 0.0, "", 12.0, 67 * MiB, node=here),
        ProcessStats("learner", 0, 1001, "running", 110_000.0 * wave, "samples/s", 91.0,
                     580 * MiB, node=here),
        ProcessStats("replay", 0, 1002, "running", 104_000.0, "samples/s", 37.0, 52 * MiB,
                     node=here),
        *sims,
        ProcessStats("evaluator", 0, 1010, "running", 0.0, "", 18.0, 40 * MiB, node=here),
    )
    others = (NodeDevices("node 1", tuple(min(100.0, 70 + 25 * math.sin(t / 5 + c))
                                          for c in range(4))),) if cluster else ()
    return Snapshot(
        elapsed=t / 4, phase=phase, env_id="CartPole-v1", run_dir=RUN_DIR,
        goal=goal, env_steps=3_300 * t, env_steps_per_s=13_000.0 * (0.8 + 0.2 * wave),
        episodes=40 * t, mean_train_return=150.0,
        devices=DeviceStats(cpu, gpu_rows, "driver 560.35.03" if gpus else
                            "no GPU (NVML: driver not loaded)",
                            ("/gpu:0", "/gpu:1") if gpus else ("/cpu:0",),
                            (8 * GiB, 8 * GiB) if gpus else (), node=here, nodes=others),
        processes=procs,
        replay=ReplayStats(size=min(100_000, 3_300 * t), capacity=100_000,
                           insert_rate=13_000.0 * (0.8 + 0.2 * wave),
                           sample_rate=104_000.0 * wave, inserted=3_300 * t, sampled=samples,
                           histogram=hist if t >= 8 else (), bin_edges=edges,
                           max_priority=12.0, mean_priority=0.85, beta=0.4 + 0.01 * t),
        learner=LearnerStats(samples=samples, steps=samples // 128,
                             samples_per_s=110_000.0 * wave, loss=0.031, mean_q=48.5,
                             replicas=2 if gpus else 1, param_version=t * 20,
                             wait_fraction=0.12),
        evals=evals, eval_count=len(evals),
        best_eval=max((e.mean for e in evals), default=None),
        log=_log_lines(t))


def stream(n: int, **kw) -> Iterator[Snapshot]:
    """A recorded run: n Snapshots, a quarter-second apart."""
    return (make_snapshot(t, **kw) for t in range(n))


@dataclass
class FakeResult:
    solved: bool = False
    stop_reason: str = "quit"
    exit_code: int = 130
    error: str | None = None
    summary: dict = field(default_factory=dict)


class FakeOrchestrator:
    """The Orchestrator's API over `stream`: emits `frames` Snapshots every `period` seconds,
    then waits for a stop (as a run that has not reached its goal); `finish_after` ends the
    run by itself (goal reached). Records every call the dashboard makes."""

    def __init__(self, frames: int = 40, period: float = 0.02, gpus: bool = False,
                 finish_after: int | None = None, fail: bool = False):
        self.env_id, self.goal = "CartPole-v1", 475.0
        self.run_dir = Path(RUN_DIR)
        self.spec = QNetSpec(4, 2, (8,), True)
        self.params = None
        self.config = None
        self.frames, self.period, self.gpus = frames, period, gpus
        self.finish_after, self.fail = finish_after, fail
        self.calls: list[tuple] = []
        self.paused = False
        self.tensorboard_url: str | None = None
        self.attached: dict[str, int] = {}
        self._stop = threading.Event()
        self._reason = "quit"
        self._lock = threading.Lock()
        self._log: list[LogLine] = []  # append-only, one sequence, as the real run's
        self._generated = 0  # seq of the last recorded line taken into _log
        self._elapsed = 0.0

    def _with_own(self, s: Snapshot) -> Snapshot:
        """The recorded lines and the dashboard's orch.log lines, in one sequence."""
        with self._lock:
            self._elapsed = s.elapsed
            for line in s.log:
                if line.seq > self._generated:
                    self._generated = line.seq
                    self._log.append(replace(line, seq=len(self._log) + 1))
            log = tuple(self._log[-30:])
        return replace(s, log=log, paused=self.paused, tensorboard_url=self.tensorboard_url)

    def run(self, on_snapshot: Callable[[Snapshot], None]) -> FakeResult:
        last = None
        for t in range(self.frames):
            if self._stop.wait(self.period):
                break
            if self.fail and t == 3:
                raise RuntimeError("replay service died")
            last = make_snapshot(t, gpus=self.gpus)
            on_snapshot(self._with_own(last))
            if self.finish_after is not None and t + 1 >= self.finish_after:
                on_snapshot(self._with_own(replace(last, phase=snap.PHASE_GOAL)))
                return FakeResult(True, "goal", 0)
        else:
            self._stop.wait()
        if last is not None:
            on_snapshot(self._with_own(replace(last, phase=snap.PHASE_STOPPED,
                                               stop_reason=self._reason)))
        return FakeResult(False, self._reason, 130 if self._reason in ("quit", "interrupted")
                          else 1)

    def request_stop(self, reason: str = "quit") -> None:
        self.calls.append(("stop", reason))
        self._reason = reason
        self._stop.set()

    def abort(self) -> None:
        self.calls.append(("abort",))
        self.request_stop("interrupted")

    def request_checkpoint(self) -> None:
        self.calls.append(("checkpoint",))
        self.log(f"checkpoint {RUN_DIR}/checkpoints/ckpt-000000102400.npz")

    def set_paused(self, paused: bool) -> None:
        self.calls.append(("pause", paused))
        self.paused = paused

    def log(self, text: str, level: str = "info") -> None:
        self.calls.append(("log", text))
        with self._lock:
            self._log.append(LogLine(len(self._log) + 1, self._elapsed, level, text))

    def attach(self, role: str, pid: int) -> None:
        self.attached[role] = pid

    def detach(self, role: str) -> None:
        self.attached.pop(role, None)


class FakeChild:
    """Stands in for the preview window or TensorBoard."""

    def __init__(self, url: str = "http://127.0.0.1:6006/", pid: int = 4242):
        self.alive, self.pid, self.url = False, pid, url
        self.starts = self.stops = 0

    def start(self) -> None:
        self.alive, self.starts = True, self.starts + 1

    def stop(self) -> None:
        self.alive, self.stops = False, self.stops + 1

    def is_alive(self) -> bool:
        return self.alive
