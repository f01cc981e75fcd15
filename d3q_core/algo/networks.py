"""Which Q-network a run trains, from its env and `learner.network`: one QNetSpec that the
learner (Keras), the simulators and the evaluator (NumPy) all build from.

"auto" fits the network to the observations: an MLP over flat vectors, the Nature DQN CNN
(Mnih et al. 2015, as Ape-X used it) over Atari's stacks of 84x84 frames, the MinAtar
paper's CNN (Young & Tian 2019: one 3x3 layer of 16, then 128 units) over MinAtar's 10x10
frames. A CNN's trunk must fit the frames, and image observations need a CNN: both refused
in one line naming the setting.
"""

from __future__ import annotations

from d3q_core.algo.qnet import NETWORKS, QNetSpec
from d3q_core.config import ConfigError, LearnerConfig
from d3q_core.envs import EnvInfo

ATARI_SCALE = 1.0 / 255.0  # uint8 grey levels to [0, 1], inside the network


def network_name(info: EnvInfo, learner: LearnerConfig) -> str:
    if learner.network != "auto":
        return learner.network
    return {"atari": "nature", "minatar": "minatar"}.get(info.family, "mlp")


def _trunk_fits(conv: tuple[tuple[int, int, int], ...], height: int, width: int) -> bool:
    for _, kernel, stride in conv:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        if height < 1 or width < 1:
            return False
    return True


def choose_network(info: EnvInfo, learner: LearnerConfig) -> QNetSpec:
    """The network spec for this env and these settings; ConfigError if they do not fit."""
    name = network_name(info, learner)
    if name == "mlp":
        if info.pixels:
            raise ConfigError(f"learner.network = 'mlp': {info.id} has image observations "
                              f"{info.obs_shape}; use auto, nature or minatar")
        return QNetSpec(info.obs_shape, info.n_actions, tuple(learner.hidden), learner.dueling)
    if not info.pixels:
        raise ConfigError(f"learner.network = {name!r}: {info.id} has flat observations "
                          f"{info.obs_shape}, not images; use auto or mlp")
    conv, hidden = NETWORKS[name]
    channels_first = info.stack > 1  # (S, H, W): the stack becomes the channels
    height, width = info.frame_shape[:2]
    if not _trunk_fits(conv, height, width):
        raise ConfigError(f"learner.network = {name!r}: its convolutions do not fit "
                          f"{info.id}'s {height}x{width} frames; use auto")
    return QNetSpec(info.obs_shape, info.n_actions, hidden, learner.dueling, conv=conv,
                    channels_first=channels_first,
                    obs_scale=ATARI_SCALE if info.family == "atari" else 1.0)
