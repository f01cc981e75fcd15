"""Atari through ale-py (d3q's `atari` extra): `ALE/<Game>-v5` ids, played by ale-py's own
vector env with the DQN/Ape-X preprocessing done in C++.

The preprocessing (Mnih et al. 2015, kept by Ape-X): 4 emulator frames per action with the
max over the last two, grayscale, 84x84, a stack of the last 4 such frames (oldest first), up
to 30 no-op actions at the start of each game, FIRE pressed at reset where the game needs it,
no sticky actions (`repeat_action_probability` 0; the v5 ids default to 0.25, set it through
env.kwargs to train with them). For training a lost life ends the episode (no bootstrap
across it) while the game goes on, and rewards are clipped to [-1, 1] by the simulator, which
keeps the raw score of each whole game for the faces. Evaluation plays whole games with raw
scores, capped at 108,000 emulator frames (30 minutes of play), as the papers do.

Why ale-py's vector env and not gymnasium's AtariPreprocessing + FrameStackObservation over
single envs: 16 copies of Pong with random actions on one core here ran 2,171 steps/s against
1,467 (1.48x; BENCHMARKS.md, "Pixels"), and it needs no OpenCV.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

STACK = 4
FRAME_SHAPE = (84, 84)
EVAL_FRAME_CAP = 108_000  # emulator frames a game may last: 30 minutes at 60 Hz
# env.kwargs a user may pass: the vector env's own names for what gymnasium's ids take
ALLOWED_KWARGS = ("repeat_action_probability", "full_action_space",
                  "max_num_frames_per_episode", "noop_max", "use_fire_reset", "frameskip")


def game_of(spec: Any) -> str:
    """The ROM name (`pong`) of a registered `ALE/Pong-v5`."""
    game = (getattr(spec, "kwargs", None) or {}).get("game")
    if not game:
        raise ValueError(f"{spec.id} names no ALE game")
    return str(game)


def check_kwargs(env_id: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - set(ALLOWED_KWARGS))
    if unknown:
        raise ValueError(f"env.kwargs.{unknown[0]}: not an Atari setting d3q passes on "
                         f"(known: {', '.join(ALLOWED_KWARGS)})")
    return dict(kwargs)


def vector_env(game: str, n: int, *, training: bool, kwargs: Mapping[str, Any] | None = None,
               rgb: bool = False) -> Any:
    """n copies of the game, stepped together on this thread (no ALE worker threads: a
    simulator is one process per core). `training`: a lost life ends the episode; else
    whole games, capped. `rgb`: the raw 210x160 colour screen instead of the preprocessed
    stack (the preview's twin of a policy's env, see play_env)."""
    from ale_py.vector_env import AtariVectorEnv

    settings: dict[str, Any] = {
        "repeat_action_probability": 0.0, "noop_max": 30, "frameskip": 4,
        "max_num_frames_per_episode": EVAL_FRAME_CAP, "use_fire_reset": True}
    settings.update(kwargs or {})
    if rgb:
        shape = {"grayscale": False, "img_height": 210, "img_width": 160, "stack_num": 1}
    else:
        shape = {"grayscale": True, "img_height": FRAME_SHAPE[0], "img_width": FRAME_SHAPE[1],
                 "stack_num": STACK}
    return AtariVectorEnv(game, n, num_threads=1, maxpool=True, episodic_life=False,
                          life_loss_info=training, reward_clipping=False, **shape, **settings)


def game_over(terminated: np.ndarray, truncated: np.ndarray, info: Mapping[str, Any],
              lives_before: np.ndarray | None = None) -> np.ndarray:
    """Which copies ended a whole game: the frame cap, the last life lost, or an end with
    no life lost (a game that ends with lives left). A lost life alone ends only the
    training episode: the game goes on at the next step, which is a real step (ale-py
    resets only at a game's end)."""
    lives = np.asarray(info.get("lives", np.zeros_like(terminated, np.int32)))
    lost = lives < lives_before if lives_before is not None else np.ones_like(terminated)
    return truncated | (terminated & ((lives <= 0) | ~lost))


class PlayEnv:
    """One game as a single gymnasium-style env, for the preview and recorded videos:
    observations are the preprocessed stacks the policy was trained on (evaluation
    settings: whole games), `render()` the game's own colour screen.

    ale-py's vector env renders nothing, so a twin plays the same game beside it: the same
    seed and the same actions with sticky actions off give the same emulator states (checked
    step by step in tests/test_pixel_envs.py), and the twin's observation is the raw screen."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}
    spec = None  # not a registered gymnasium env: no episode cap beyond the frame cap

    def __init__(self, game: str, kwargs: Mapping[str, Any] | None = None,
                 render_mode: str | None = None):
        self._env = vector_env(game, 1, training=False, kwargs=kwargs)
        self._twin = vector_env(game, 1, training=False, kwargs=kwargs, rgb=True) \
            if render_mode == "rgb_array" else None
        self.render_mode = render_mode
        self.action_space = self._env.single_action_space
        self.observation_space = self._env.single_observation_space
        self._screen: np.ndarray | None = None
        self.twin_info: dict = {}  # the twin's last info: its frame number, for the tests

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        if seed is None:  # one draw for both, or the twin would start another game
            seed = int(np.random.SeedSequence().entropy % 2**31)
        obs, info = self._env.reset(seed=seed)
        if self._twin is not None:
            self._screen = self._twin.reset(seed=seed)[0][0, -1]
        return obs[0], {k: v[0] for k, v in info.items()}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = np.array([int(action)], np.int64)
        obs, rew, term, trunc, info = self._env.step(a)
        if self._twin is not None:
            screen, _, _, _, twin_info = self._twin.step(a)
            self._screen, self.twin_info = screen[0, -1], {k: v[0] for k, v in
                                                           twin_info.items()}
        return obs[0], float(rew[0]), bool(term[0]), bool(trunc[0]), {k: v[0] for k, v in
                                                                      info.items()}

    def render(self) -> np.ndarray | None:
        return self._screen

    def close(self) -> None:
        self._env.close()
        if self._twin is not None:
            self._twin.close()
