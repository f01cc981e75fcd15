"""Gymnasium env construction and the checks that keep d3q's assumptions honest.

d3q's Q-network is an MLP over a flat observation with one output per action, so only envs
with a discrete action space and a 1-D Box observation are accepted; anything else is refused
before a process starts, with a one-line reason naming the env.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


class EnvError(ValueError):
    """The configured env cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class EnvInfo:
    id: str
    obs_dim: int
    n_actions: int
    reward_threshold: float | None
    max_episode_steps: int | None


def _quiet_make(env_id: str, **kwargs) -> gym.Env:
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return gym.make(env_id, **kwargs)


def inspect_env(env_id: str) -> EnvInfo:
    """Build the env once and check it fits d3q; raises EnvError with a one-line reason."""
    try:
        spec = gym.spec(env_id)
    except Exception as exc:  # gymnasium raises several error types for unknown ids
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise EnvError(f"env.id = {env_id!r}: unknown environment ({reason})") from None
    try:
        env = _quiet_make(env_id)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise EnvError(f"env.id = {env_id!r}: cannot be created ({reason})") from None
    try:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            kind = type(env.action_space).__name__
            raise EnvError(f"env.id = {env_id!r}: action space is {kind}; d3q needs Discrete")
        obs = env.observation_space
        if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
            shape = getattr(obs, "shape", None)
            raise EnvError(
                f"env.id = {env_id!r}: observations are {type(obs).__name__}{shape}; "
                "d3q needs a 1-D Box (no images)"
            )
        return EnvInfo(
            id=env_id,
            obs_dim=int(obs.shape[0]),
            n_actions=int(env.action_space.n),
            reward_threshold=spec.reward_threshold,
            max_episode_steps=spec.max_episode_steps,
        )
    finally:
        env.close()


def make_vector_env(env_id: str, n: int, seed: int) -> gym.vector.VectorEnv:
    """K copies stepped together: the env's native NumPy vector implementation where it has
    one (CartPole's is ~3x faster than looping over copies), else a synchronous vector.

    Both use next-step autoreset: the step that ends an episode returns that episode's final
    observation, and the following step is a reset step whose action is ignored, so the
    simulator drops it and no transition spans two episodes."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            env = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
        except Exception:
            env = gym.make_vec(
                env_id,
                num_envs=n,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP},
            )
    mode = env.metadata.get("autoreset_mode")
    if mode is not None and mode != gym.vector.AutoresetMode.NEXT_STEP:
        env.close()
        raise EnvError(f"env.id = {env_id!r}: vector env autoresets in {mode}, need NEXT_STEP")
    env.reset(seed=seed)
    return env


def seeds_for(base: int, count: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(base).generate_state(count)]
