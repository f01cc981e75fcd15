"""Snapshot: the immutable picture of a run that the orchestrator emits a few times a second.

Both faces (the Textual dashboard and the headless printer) render only Snapshots, so a
recorded stream of them drives layout tests without any training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Phases of a run, in the order they usually occur.
PHASE_STARTING = "starting"
PHASE_FILLING = "filling replay"
PHASE_TRAINING = "training"
PHASE_CONFIRMING = "confirming goal"
PHASE_GOAL = "goal reached"
PHASE_STOPPING = "stopping"
PHASE_STOPPED = "stopped"


@dataclass(frozen=True)
class GpuStats:
    index: int
    name: str
    util_percent: float
    mem_used: int  # bytes
    mem_total: int  # bytes
    temperature_c: float | None = None
    power_w: float | None = None


@dataclass(frozen=True)
class NodeDevices:
    """Another machine of a cluster that hosts roles: its cores and GPUs."""

    name: str  # "node 1", ...
    cpu_percent: tuple[float, ...] = ()
    gpus: tuple[GpuStats, ...] = ()
    gpu_note: str = "no GPU"


@dataclass(frozen=True)
class DeviceStats:
    """The run's own machine (cores, GPUs, the learner's devices), and on a cluster the other
    nodes that host roles."""

    cpu_percent: tuple[float, ...] = ()  # one entry per logical core
    gpus: tuple[GpuStats, ...] = ()
    gpu_note: str = "no GPU"  # why there are no GPU rows, or the driver version
    learner_devices: tuple[str, ...] = ()  # e.g. ("/cpu:0",) or ("/gpu:0", "/gpu:1")
    learner_device_memory: tuple[int, ...] = ()  # bytes TF holds per learner device, if known
    node: str = "local"  # the name of the run's own machine ("head" on a Ray cluster)
    nodes: tuple[NodeDevices, ...] = ()  # the other machines, by name


def role_name(role: str, index: int) -> str:
    """`simulator 3`, but `learner`: the roles there is one of go without an index (a
    sharded replay's first shard is `replay`, the others `replay 1`, ...)."""
    return f"{role} {index}" if role == "simulator" or index > 0 else role


@dataclass(frozen=True)
class ProcessStats:
    role: str  # simulator, replay, learner, evaluator, preview, orchestrator, tensorboard
    index: int
    pid: int | None
    state: str  # starting, running, paused, restarting, exited, failed
    rate: float = 0.0
    rate_unit: str = ""  # "steps/s", "samples/s", "evals/min"
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    restarts: int = 0
    detail: str = ""  # e.g. "eps 0.40" for a simulator
    node: str = "local"  # the machine it runs on (Ray backend: "head", "node 1", ...)

    @property
    def name(self) -> str:
        return role_name(self.role, self.index)


@dataclass(frozen=True)
class ReplayStats:
    """The replay's stats message and the Replay panel's data: one schema."""

    size: int = 0
    capacity: int = 0
    insert_rate: float = 0.0  # transitions/s
    sample_rate: float = 0.0  # transitions/s
    inserted: int = 0
    sampled: int = 0
    total_priority: float = 0.0
    max_priority: float = 0.0
    mean_priority: float = 0.0
    histogram: tuple[int, ...] = ()  # counts per log-spaced priority bin
    bin_edges: tuple[float, ...] = ()  # len(histogram) + 1 edges
    beta: float = 0.0
    waiting_insert: bool = False  # a simulator's batch waits for the rate limiter
    batches_in_flight: int = 0  # sample batches the learner has not answered yet
    in_flight_limit: int = 0  # at most this many (replay.prefetch, or what the pipes hold)
    nbytes: int = 0  # what the memory holds (a pixel env's frames once each)


def combine_replay(shards: list[ReplayStats]) -> ReplayStats:
    """A sharded replay as one memory: sizes, rates and counts summed, the largest
    priority, the size-weighted mean; the histogram summed where the shards' bins agree,
    else the biggest shard's."""
    if len(shards) == 1:
        return shards[0]
    size = sum(r.size for r in shards)
    big = max(shards, key=lambda r: r.size)
    same_bins = all(r.bin_edges == big.bin_edges and len(r.histogram) == len(big.histogram)
                    for r in shards)
    histogram = tuple(map(sum, zip(*(r.histogram for r in shards), strict=True))) \
        if same_bins and big.histogram else big.histogram
    return ReplayStats(
        size=size, capacity=sum(r.capacity for r in shards),
        insert_rate=sum(r.insert_rate for r in shards),
        sample_rate=sum(r.sample_rate for r in shards),
        inserted=sum(r.inserted for r in shards), sampled=sum(r.sampled for r in shards),
        total_priority=sum(r.total_priority for r in shards),
        max_priority=max(r.max_priority for r in shards),
        mean_priority=sum(r.mean_priority * r.size for r in shards) / size if size else 0.0,
        histogram=histogram, bin_edges=big.bin_edges, beta=big.beta,
        waiting_insert=any(r.waiting_insert for r in shards),
        batches_in_flight=sum(r.batches_in_flight for r in shards),
        in_flight_limit=sum(r.in_flight_limit for r in shards),
        nbytes=sum(r.nbytes for r in shards))


@dataclass(frozen=True)
class LearnerStats:
    """The learner's stats message and the Learner figures of the faces: one schema."""

    samples: int = 0  # transitions processed (the x axis of every curve)
    steps: int = 0
    samples_per_s: float = 0.0
    loss: float = float("nan")
    mean_q: float = float("nan")
    replicas: int = 0
    param_version: int = 0
    wait_fraction: float = 0.0  # share of time waiting for sample batches


@dataclass(frozen=True, slots=True)  # a long run keeps thousands
class EvalPoint:
    learner_samples: int
    env_steps: int
    version: int
    mean: float
    max: float
    min: float
    elapsed: float  # seconds since the run started


@dataclass(frozen=True)
class LogLine:
    seq: int  # increasing; a face appends the lines newer than the last it showed
    elapsed: float
    level: str  # info, warning, error
    text: str


@dataclass(frozen=True)
class Snapshot:
    elapsed: float  # seconds since the command started
    phase: str
    env_id: str
    run_dir: str
    goal: float
    stop_reason: str | None = None
    paused: bool = False
    env_steps: int = 0
    env_steps_per_s: float = 0.0
    episodes: int = 0
    mean_train_return: float = float("nan")
    devices: DeviceStats = field(default_factory=DeviceStats)
    processes: tuple[ProcessStats, ...] = ()
    replay: ReplayStats = field(default_factory=ReplayStats)
    learner: LearnerStats = field(default_factory=LearnerStats)
    evals: tuple[EvalPoint, ...] = ()  # bounded: older points thinned (run.evalhistory)
    eval_count: int = 0  # every evaluation so far, thinned or not
    best_eval: float | None = None
    confirmed_eval: float | None = None
    stall: str | None = None  # which stage looks stuck, if any
    log: tuple[LogLine, ...] = ()  # the newest lines (bounded)
    tensorboard_url: str | None = None
