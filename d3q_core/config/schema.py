"""Every setting of a run, grouped by the role that owns it: the schema.

Defaults are tuned for CartPole-v1 on a 2-core machine; the comment beside each default says
why it has that value. A Config is built from defaults, then an optional TOML file, then
`--set section.key=value` overrides, and is validated before anything starts so that a bad
value fails with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A setting is unknown, of the wrong type or out of range; the message is one line."""


def _f(default: Any, **rules: Any) -> Any:
    """A dataclass field with validation rules (min, max, gt, choices, pattern) as metadata."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=rules)
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=rules)
    return field(default=default, metadata=rules)


DAY = 86_400.0
DEVICES_PATTERN = r"auto|cpu|cpu:[1-9][0-9]*|gpu|gpu:[0-9]+(,[0-9]+)*"


@dataclass
class EnvConfig:
    # the showcase task; `my_pkg.envs:MyEnv-v0` imports my_pkg.envs first (it registers it)
    id: str = _f("CartPole-v1", pattern=r"\S+")
    # passed to gymnasium.make; a TOML table, or `--set env.kwargs.NAME=VALUE` (TOML value)
    kwargs: dict[str, Any] = _f({})


@dataclass
class SimulatorsConfig:
    # 0: the cores left after the learner and the replay, at least 1
    count: int = _f(0, min=0, max=4096)
    # enough to amortize the forward pass; 32 was no faster to the goal (8 seeds: 9.2 s both)
    envs_per_simulator: int = _f(16, min=1, max=65_536)
    epsilon: float = _f(0.4, min=0.0, max=1.0)  # Ape-X base epsilon
    # Ape-X spread: eps_i = eps^(1 + alpha*i/(N-1))
    epsilon_alpha: float = _f(7.0, min=0.0, max=1000.0)
    epsilon_per: str = _f("env", choices=("env", "simulator"))  # spread over every env copy
    warmup_random: bool = _f(True)  # epsilon 1.0 until the replay holds replay.min_size
    # vector steps per experience batch sent to the replay
    steps_per_batch: int = _f(4, min=1, max=100_000)
    # vector steps between looks for newer parameters
    param_sync_every: int = _f(8, min=1, max=10**9)
    initial_priorities: bool = _f(True)  # Ape-X: priorities from the actor's own TD error
    # Ray backend: seconds of experience per call to the replay. A call costs 0.3-1 ms, a
    # CartPole batch of steps_per_batch steps ~0.3 ms of acting: 20 ms keeps Ray under 5%
    batch_seconds: float = _f(0.02, min=0.0, max=60.0)


@dataclass
class AlgorithmConfig:
    """Read where transitions are made (the simulators: n-step returns, gamma^n discounts)
    and sized (the replay's insert bound); the learner only sees their discounts."""

    gamma: float = _f(0.99, min=0.0, max=1.0)  # discount per env step
    n_step: int = _f(3, min=1, max=1000)  # Ape-X's n-step returns


@dataclass
class ReplayConfig:
    capacity: int = _f(100_000, min=1, max=2**40)  # CartPole needs far less; memory stays ~10 MB
    alpha: float = _f(0.6, min=0.0, max=1.0)  # PER paper's proportional variant
    beta: float = _f(0.4, min=0.0, max=1.0)  # initial IS exponent, annealed to 1
    beta_anneal_samples: int = _f(500_000, min=1, max=10**15)  # learner samples to reach beta = 1
    priority_eps: float = _f(1e-3, gt=0.0, max=1e6)  # keeps every transition sampleable
    # replay ratio: 4 reached the goal in 11.4 s median over 10 seeds against 19.2 s for 8
    # (2-core box); with the compiled simulator fresh data is cheap, stale updates are not;
    # 6, tried again with the faster learner link: 9.6 s vs 9.2 s (8 seeds, interleaved)
    samples_per_insert: float = _f(4.0, gt=0.0, max=1e6)
    # first sample once this many transitions are stored
    min_size: int = _f(1_000, min=1, max=2**40)
    # rate-limiter slack; 0: derived from batch sizes
    error_buffer: float = _f(0.0, min=0.0, max=1e15)
    prefetch: int = _f(4, min=1, max=1024)  # batches in flight to the learner: it never waits
    queue_batches: int = _f(8, min=1, max=1024)  # batches in flight per simulator (credits)
    snapshot: bool = _f(False)  # save the memory beside the checkpoints for resume
    # at most one snapshot this often (and one with the final checkpoint): writing one blocks
    # the replay, 26 s for a full 1M Atari memory (7.1 GB) here, so not every checkpoint
    snapshot_seconds: float = _f(600.0, gt=0.0, max=DAY)
    # Ray backend: the memory split over this many replay actors (capacity and min_size
    # shared out), simulator i feeding shard i mod shards; the learner takes a shard's batch
    # with probability in proportion to its priority total
    shards: int = _f(1, min=1, max=256)


@dataclass
class LearnerConfig:
    devices: str = _f("auto", pattern=DEVICES_PATTERN)  # every GPU, else the CPU
    batch_size: int = _f(128, min=1, max=2**20)  # per replica
    # "auto": an MLP over flat vectors, the Nature DQN CNN over Atari's 84x84 stacks, the
    # MinAtar paper's small CNN over MinAtar's 10x10 frames (every one with the dueling head
    # when learner.dueling); or one of them named
    network: str = _f("auto", choices=("auto", "mlp", "nature", "minatar"))
    # the MLP's layers (small: CartPole is easy); a CNN has its own dense layer (512, 128)
    hidden: tuple[int, ...] = _f((128, 128), item_min=1, item_max=65_536)
    # GPUs: compute in bfloat16 (float32 weights, float32 Q-values and loss), ~2x the
    # convolutions' speed on tensor cores; off on CPUs, which gain nothing from it
    mixed_precision: bool = _f(False)
    dueling: bool = _f(True)  # separate value and advantage streams
    double_dqn: bool = _f(True)  # online argmax, target evaluation
    learning_rate: float = _f(1e-3, gt=0.0, max=10.0)  # Adam; fast and stable with Huber + clipping
    adam_epsilon: float = _f(1e-7, gt=0.0, max=10.0)
    grad_clip_norm: float = _f(10.0, gt=0.0, max=1e9)  # global-norm clipping
    target_sync_every: int = _f(1, min=1, max=10**9)  # learner steps between target updates
    target_tau: float = _f(0.01, gt=0.0, max=1.0)  # 1.0: hard copy; below: Polyak averaging
    # train steps per compiled call: one call does k steps on k interleaved slices of one
    # replay sample, so TensorFlow's per-call Python overhead (~half a small step) is paid once
    steps_per_call: int = _f(4, min=1, max=64)
    # learner steps between parameter publications; 16: 10.1 s to goal vs 9.2 s (8 seeds)
    publish_every: int = _f(8, min=1, max=10**9)
    checkpoint_seconds: float = _f(30.0, gt=0.0, max=DAY)  # periodic checkpoint cadence
    keep_checkpoints: int = _f(3, min=1, max=10_000)  # newest checkpoints kept (plus the best)
    # TF intra-op threads; 0: one per core left to the learner
    threads: int = _f(0, min=0, max=1024)
    # learner processes: one, training on every device of its machine (tf.distribute); the
    # setting is where multi-worker TensorFlow goes, behind the same role and actor
    workers: int = _f(1, min=1, max=1)


@dataclass
class EvaluationConfig:
    # 32, not 20: a 20-episode mean crossed 475 by luck in 2 of 10 seeds (confirmed 467-471
    # over 100 episodes); with 32 every measured crossing held, for ~1 s more time-to-goal
    episodes: int = _f(32, min=1, max=100_000)  # greedy episodes per evaluation
    # a mean at the goal is re-checked on this many more episodes (0: off) and counts only if
    # the mean of all still is: 32 + 68 = 100, gym's own "solved" window for CartPole. 32
    # alone crossed by luck in 2 of 10 seeds (466-467 over 100 fresh); the extra play is
    # spent only near the goal
    recheck_episodes: int = _f(68, min=0, max=100_000)
    # evaluation cadence in learner samples
    every_learner_samples: int = _f(20_000, min=1, max=10**15)
    confirm_episodes: int = _f(100, min=1, max=100_000)  # re-evaluation of the goal's parameters
    seed_offset: int = _f(1_000_003, min=0, max=2**31)  # eval seeds stay apart from training seeds


@dataclass
class StopConfig:
    goal: float | None = _f(None)  # None: the env's reward_threshold
    max_seconds: float = _f(600.0, min=0.0, max=365 * DAY)  # 0 = no limit
    max_learner_samples: int = _f(0, min=0, max=10**18)  # 0 = no limit
    max_env_steps: int = _f(0, min=0, max=10**18)  # 0 = no limit
    stall_warn_seconds: float = _f(15.0, gt=0.0, max=DAY)  # report the stuck stage after this long
    stall_stop_seconds: float = _f(60.0, gt=0.0, max=DAY)  # end the run instead of hanging
    # learner ready and replay at min_size by then, or the run ends (TF's first start on a
    # cold machine has taken 8 s here; CUDA's can take a minute)
    startup_timeout_seconds: float = _f(180.0, gt=0.0, max=DAY)
    max_restarts_per_minute: int = _f(5, min=0, max=10_000)  # per restarted role


@dataclass
class RunConfig:
    seed: int = _f(0, min=0, max=2**32 - 1)  # Keras seeds take 32 bits
    root: str = _f("runs")  # parent of run directories
    tensorboard: bool = _f(True)  # write TensorBoard events
    snapshot_hz: float = _f(4.0, gt=0.0, max=50.0)  # Snapshots per second to the faces
    # tuned settings by env (config/presets.py): "auto" takes the env's own preset if it has
    # one, "none" the plain defaults, a preset's name that one; a run's config.toml records
    # the preset applied
    preset: str = _f("auto", pattern=r"\S+")


@dataclass
class ClusterConfig:
    """Where the roles run. `local`: processes on this machine; `ray`: actors on a cluster."""

    backend: str = _f("local", choices=("local", "ray"))
    # ray: "local" starts a private instance for this run (and stops it after), "auto" joins
    # the cluster `ray start` made on this machine, HOST:PORT a cluster's head
    address: str = _f("local", pattern=r"local|auto|[^\s:]+:[0-9]+")
    namespace: str = _f("d3q", pattern=r"[A-Za-z0-9_.-]+")
    include_dashboard: bool = _f(False)  # Ray's own web dashboard: ~0.2 GiB more
    num_cpus: int = _f(0, min=0, max=1_000_000)  # a private instance's cores; 0: this machine's
    # custom Ray resources each role asks for, e.g. {sim = 1} against `ray start --resources
    # '{"sim": 8}'` puts 8 simulators on each node that has them; {} places a role anywhere
    simulator_resources: dict[str, Any] = _f({})
    learner_resources: dict[str, Any] = _f({})
    replay_resources: dict[str, Any] = _f({})  # {}: the learner's (the replay beside it)
    evaluator_resources: dict[str, Any] = _f({})
    # GPUs the learner's actor reserves (Ray places it on a node that has them); 0 reserves
    # none. Either way the learner sees every GPU of its node and uses learner.devices
    learner_gpus: int = _f(0, min=0, max=1024)
    # sample batches per call to the learner; 0: as many as stay under Ray's inline limit
    # (100 KB; a bigger argument goes through the object store: 4 CartPole batches of 512
    # cost 1.86 ms to submit, 3 cost 0.65 ms), at most 8
    sample_batches_per_call: int = _f(0, min=0, max=1024)
    # where checkpoints and replay snapshots go: "" the run directory (the learner's and the
    # replay's nodes must reach it at the same path: one machine, or a shared filesystem);
    # else a folder every node mounts at this path (NFS, a cloud bucket's mount): the run
    # writes to a folder of its own there, and the run directory's checkpoints/ links to it
    storage: str = _f("")


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    simulators: SimulatorsConfig = field(default_factory=SimulatorsConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    stop: StopConfig = field(default_factory=StopConfig)
    run: RunConfig = field(default_factory=RunConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


SECTIONS: dict[str, type] = typing.get_type_hints(Config)  # section name -> its class

# keys that moved to the section of the role that reads them: a one-line hint names the new one
MOVED_KEYS = {"learner.gamma": "algorithm.gamma", "learner.n_step": "algorithm.n_step"}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A config.toml written before keys moved, with those keys where they are now (a run
    directory's own settings are taken as they were meant; a user's file gets the hint)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for old, new in MOVED_KEYS.items():
        (osec, okey), (nsec, nkey) = old.split("."), new.split(".")
        if isinstance(out.get(osec), dict) and okey in out[osec]:
            out.setdefault(nsec, {}).setdefault(nkey, out[osec].pop(okey))
    return out


def field_types(section_cls: type) -> dict[str, Any]:
    """The resolved type of every field of a section (the annotations are strings)."""
    return typing.get_type_hints(section_cls)


def known_keys() -> list[str]:
    """Every `section.key` there is."""
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


STOP_KEYS = tuple(f"stop.{f.name}" for f in dataclasses.fields(StopConfig))
# what a resumed run may change: when it stops, and where its roles run (not how it learns)
RESUME_KEYS = STOP_KEYS + tuple(f"cluster.{f.name}" for f in dataclasses.fields(ClusterConfig))
RESUME_RULE = "with --resume only stop.* and cluster.* settings may change"
