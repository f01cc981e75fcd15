"""The roles of one run as recipes: who each role is and how to build it, over plain settings.
A backend builds the role from its recipe wherever it places it (Acme's builder: factories
that do not know where they run)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from d3q_core.algo.exploration import simulator_epsilons
from d3q_core.algo.framememory import FrameLayout
from d3q_core.algo.qnet import QNetSpec
from d3q_core.config import Config
from d3q_core.roles.evaluator import Evaluator
from d3q_core.roles.learner import Learner
from d3q_core.roles.replay import Replay
from d3q_core.roles.simulator import Simulator
from d3q_core.run.backend import RoleRecipe


class RolePlan:
    def __init__(self, config: Config, spec: QNetSpec, goal: float, n_simulators: int,
                 checkpoints: Path, learner_threads: int, resume_checkpoint: Path | None = None,
                 replay_restore: list[Path] | None = None, layout: FrameLayout | None = None):
        """`replay_restore`: each shard's snapshot to resume from; `layout`: a pixel env's
        frames (None: flat vectors)."""
        self.config, self.spec, self.goal = config, spec, goal
        self.layout = layout
        self.n_simulators = n_simulators
        self.checkpoints, self.learner_threads = checkpoints, learner_threads
        self.resume_checkpoint, self.replay_restore = resume_checkpoint, replay_restore

    def learner(self) -> RoleRecipe:
        return RoleRecipe("learner", 0, 0, partial(
            Learner, self.config, self.spec, str(self.checkpoints),
            str(self.resume_checkpoint) if self.resume_checkpoint else None,
            self.learner_threads))

    def replays(self) -> list[RoleRecipe]:
        """One recipe per shard (`replay.shards`; one memory unless sharded)."""
        return [RoleRecipe("replay", i, 0, partial(
            Replay, self.config, self.spec, self.config.run.seed,
            self.replay_restore[i] if self.replay_restore else None, i, self.layout,
            self.n_simulators)) for i in range(self.config.replay.shards)]

    def simulator(self, index: int, incarnation: int = 0) -> RoleRecipe:
        seed = self.config.run.seed * 1000 + index * 97 + 1
        return RoleRecipe("simulator", index, incarnation, partial(
            Simulator, self.config, self.spec, index, self.n_simulators, seed, incarnation,
            self.resume_checkpoint is not None, self.layout))

    def evaluator(self, start_after_samples: int = 0, incarnation: int = 0) -> RoleRecipe:
        return RoleRecipe("evaluator", 0, incarnation, partial(
            Evaluator, self.config, self.spec, self.goal, start_after_samples))

    def restart(self, role: str, index: int, incarnation: int,
                start_after_samples: int = 0) -> RoleRecipe:
        """A new incarnation of a role the supervision policy restarts (an evaluator goes on
        from the newest version, not from the start)."""
        if role == "simulator":
            return self.simulator(index, incarnation)
        if role == "evaluator":
            return self.evaluator(start_after_samples, incarnation)
        raise ValueError(f"{role} is not restarted")

    def epsilon_range(self) -> tuple[float, float]:
        eps = [simulator_epsilons(self.config, i, self.n_simulators)
               for i in range(self.n_simulators)]
        return min(float(e.min()) for e in eps), max(float(e.max()) for e in eps)
