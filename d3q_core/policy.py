"""A trained policy, loaded from a run directory, that acts with NumPy (no TensorFlow): what
`load_policy`, `d3q-tui eval` and `d3q-tui export` start from.

Which checkpoint: "best" is checkpoints/best.npz, the parameters whose score was confirmed at
the goal; "newest" the newest periodic checkpoint that reads back whole; "auto" (the default)
the best where the run reached its goal, else the newest; anything else is a file path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from d3q_core.algo.qnet import NumpyQNet, QNetSpec
from d3q_core.storage.checkpoint import (
    CheckpointError,
    checkpoints_dir,
    newest_checkpoint,
    read_policy,
)
from d3q_core.storage.rundir import RunDir

CHOICES = ("auto", "best", "newest")


def find_checkpoint(run_dir: Path, which: str = "auto") -> Path:
    """The checkpoint file `which` names in `run_dir`; CheckpointError (one line) if none."""
    run_dir = Path(run_dir)
    best = checkpoints_dir(run_dir) / "best.npz"
    if which == "best":
        if not best.is_file():
            raise CheckpointError(f"{best}: no best checkpoint (the run never confirmed its "
                                  "goal); use --checkpoint newest")
        return best
    if which in ("newest", "auto"):
        if which == "auto" and best.is_file():
            return best
        newest = newest_checkpoint(run_dir)
        if newest is None:
            raise CheckpointError(f"{checkpoints_dir(run_dir)}: no loadable checkpoint")
        return newest
    path = Path(which)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    return path


@dataclass
class Policy:
    """Greedy actions and Q-values of a trained network. `act` takes one observation (and
    returns an int) or a batch (and returns an array of actions)."""

    spec: QNetSpec
    weights: np.ndarray  # flat float32, in QNetSpec.layout() order
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.network = NumpyQNet(self.spec, self.weights)

    def _batch(self, obs: Any) -> tuple[np.ndarray, bool]:
        """One observation or a batch, as the network takes them (frames stay uint8)."""
        x = np.asarray(obs)
        if x.dtype == np.bool_:
            x = x.view(np.uint8)
        if not self.spec.conv:
            x = x.astype(np.float32, copy=False)
        shape = tuple(self.spec.obs_shape)
        single = x.shape == shape
        x = x[None] if single else x
        if x.shape[1:] != shape:
            dims = ", ".join(str(d) for d in shape)
            raise ValueError(f"observation shape {np.shape(obs)}: this policy takes "
                             f"({dims}{',' if len(shape) == 1 else ''}) or (batch, {dims})")
        return x, single

    def q_values(self, obs: Any) -> np.ndarray:
        x, single = self._batch(obs)
        q = np.array(self.network.q_values(x))
        return q[0] if single else q

    def act(self, obs: Any) -> int | np.ndarray:
        q = self.q_values(obs)
        return int(np.argmax(q)) if q.ndim == 1 else np.argmax(q, axis=1)

    def make_env(self, **extra: Any):
        """The env this policy was trained on (with the run's env.kwargs)."""
        from d3q_core.envs import make_env

        return make_env(self.env_id, self.env_kwargs, **extra)


def load_policy(run_dir: str | Path, checkpoint: str = "auto",
                env_kwargs: Mapping[str, Any] | None = None) -> Policy:
    """The policy of a run directory's checkpoint (see the module's note on `checkpoint`)."""
    rd = RunDir.open_existing(Path(run_dir))
    config = rd.read_config()
    path = find_checkpoint(rd.path, checkpoint)
    spec, flat, meta = read_policy(path)
    saved_env = meta.get("env_id", config.env.id)
    if saved_env != config.env.id:
        raise CheckpointError(f"{path}: saved for {saved_env}, the run is {config.env.id}")
    kwargs = dict(config.env.kwargs if env_kwargs is None else env_kwargs)
    return Policy(spec, flat, config.env.id, kwargs, path, meta)
