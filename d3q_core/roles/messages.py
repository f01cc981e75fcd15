"""Every message that crosses a port, one frozen dataclass per schema.

The sender builds the message and the run folds it into its state; the Snapshot the faces
render is made of the same classes (a replay's `ReplayStats` is the Replay panel's), so one
new stat is one edit. Transport is the backend's business: the local backend pickles these
onto its queues, a Ray backend would return them from actor calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from d3q_core.algo.framestreams import FrameChunk
from d3q_core.snapshot import LearnerStats, ReplayStats

__all__ = [
    "Checkpoint", "CheckpointSaved", "Command", "Confirmed", "Envelope", "EvalResult",
    "Experience", "Failed", "FrameChunk", "LearnerReady", "LearnerStats", "Log", "Message",
    "ParamMeta", "ReplaySaved", "ReplayStats", "SaveReplay", "SimulatorStats", "Stop",
]


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Experience:
    """A simulator's batch of n-step transitions (d3q_core.algo.transitions records) with the
    initial priorities it computed from its own TD errors, or None (the replay then uses its
    running max priority).

    From a pixel env the records refer to frames (REF_DTYPE) and `frames` carries the new
    ones (d3q_core.algo.framestreams); frame references count from each incarnation's start,
    so the replay must know which incarnation sent them."""

    simulator: int
    records: np.ndarray
    priorities: np.ndarray | None
    frames: FrameChunk | None = None
    incarnation: int = 0
    seq: int = 0  # this incarnation's message count: frames must be stored in order


@dataclass(frozen=True)
class ParamMeta:
    """What comes with a published parameter version."""

    version: int
    learner_samples: int
    env_steps: int
    publish_ns: int  # time.monotonic_ns() at publication, for broadcast latency


# --- events, role -> run -------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatorStats:
    steps_per_s: float
    mean_return: float | None  # over the simulator's last 100 ended episodes
    epsilon: float  # mean over its env copies (1.0 during warm-up)
    epsilon_min: float
    epsilon_max: float
    version: int  # parameter version it acts with
    param_latency: float | None  # median seconds from publication to acting on it


@dataclass(frozen=True)
class LearnerReady:
    devices: tuple[str, ...]
    replicas: int
    global_batch: int


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    reason: str  # periodic, requested, final
    learner_samples: int


@dataclass(frozen=True)
class ReplaySaved:
    path: str
    number: int = 0  # the SaveReplay's: an answer to an earlier one is told apart
    error: str | None = None  # the save failed (the shard is done with it either way)


@dataclass(frozen=True)
class EvalResult:
    version: int
    learner_samples: int
    env_steps: int
    mean: float
    max: float
    min: float
    episodes: int
    seconds: float


@dataclass(frozen=True, eq=False)
class Confirmed:
    """The goal's parameters played again on fresh episodes; the weights go to best.npz."""

    version: int
    learner_samples: int
    env_steps: int
    mean: float
    min: float
    weights: np.ndarray


@dataclass(frozen=True)
class Log:
    level: str  # info, warning, error
    text: str


@dataclass(frozen=True)
class Failed:
    """The role cannot go on. The run's supervision policy decides what follows: a simulator
    is restarted, a replay or learner ends the run."""

    error: str


Message = (SimulatorStats | ReplayStats | LearnerStats | LearnerReady | CheckpointSaved
           | ReplaySaved | EvalResult | Confirmed | Log | Failed)


@dataclass(frozen=True)
class Envelope:
    """A message with the role that sent it; the events port adds the sender."""

    role: str
    index: int
    message: Any  # Message


# --- commands, run -> role -----------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """Learner: write a checkpoint now."""

    reason: str


@dataclass(frozen=True)
class Stop:
    """Learner: leave, with a final checkpoint or without one."""

    final_checkpoint: bool


@dataclass(frozen=True)
class SaveReplay:
    """Replay: write the memory to `path` (beside the newest checkpoint, for resume)."""

    path: str
    number: int = 0  # echoed in the ReplaySaved


Command = Checkpoint | Stop | SaveReplay
