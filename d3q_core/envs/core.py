"""Gymnasium env construction and the checks that keep d3q's assumptions honest.

Three families: flat vectors (any gymnasium env with a 1-D Box observation: an MLP), Atari
(`ALE/<Game>-v5`, stacks of 84x84 frames) and MinAtar (`MinAtar/<Game>-v1`, 10x10 boolean
frames), the last two each behind an extra (envs/atari.py, envs/minatar.py). Actions must be
Discrete. Anything else is refused before a process starts, with a one-line reason naming
the env.

An id may name the module that registers it, as gymnasium allows: `my_pkg.envs:MyEnv-v0`
imports `my_pkg.envs` first, in every process that makes the env. `kwargs` (the config's
`env.kwargs`) go to `gymnasium.make`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


class EnvError(ValueError):
    """The configured env cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class EnvInfo:
    id: str
    obs_shape: tuple[int, ...]
    n_actions: int
    reward_threshold: float | None
    max_episode_steps: int | None
    family: str = "vector"  # "vector", "atari" or "minatar"
    # frames per observation in a pixel env (Atari 4: obs is (4, 84, 84); MinAtar 1: obs is
    # the frame); 0: a flat vector
    stack: int = 0

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))

    @property
    def pixels(self) -> bool:
        return self.stack > 0

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return self.obs_shape[1:] if self.stack > 1 else self.obs_shape

    @property
    def obs_dtype(self) -> str:
        """What observations are stored and sent as (MinAtar's booleans as uint8)."""
        return "uint8" if self.pixels else "float32"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def import_env_module(env_id: str) -> None:
    """Import the module named before the colon of `module:EnvId` (it registers the env);
    an id without one needs nothing. Raises EnvError naming the module."""
    if ":" not in env_id:
        return
    module = env_id.split(":", 1)[0]
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - whatever the module raises, one line
        raise EnvError(f"env.id = {env_id!r}: cannot import {module!r} "
                       f"({_first_line(exc)})") from None


# env families whose dependencies come with one of d3q's extras: entry-point prefix -> extra
EXTRAS = {"gymnasium.envs.box2d": "box2d"}
# id prefix -> pixel family, each brought by the extra of its name
FAMILIES = {"ALE/": "atari", "MinAtar/": "minatar"}


def family_of(env_id: str) -> str:
    bare = env_id.split(":", 1)[-1]
    return next((fam for prefix, fam in FAMILIES.items() if bare.startswith(prefix)),
                "vector")


def _extra_line(env_id: str, extra: str) -> str:
    return (f"env.id = {env_id!r}: needs d3q's {extra} extra: pip install 'd3q[{extra}]' "
            f"(or .venv/bin/pip install -e '.[{extra}]')")


def prepare_family(env_id: str) -> str:
    """Import what the env needs (the module of a `module:EnvId` id, and its family's
    package, registered); its family. EnvError naming the module or the missing extra."""
    import_env_module(env_id)
    family = family_of(env_id)
    try:
        if family == "atari":
            import ale_py

            ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stderr
            gym.register_envs(ale_py)
        elif family == "minatar":
            from d3q_core.envs.minatar import register

            register()
    except ImportError:
        raise EnvError(_extra_line(env_id, family)) from None
    return family


def _needs_extra(env_id: str, spec: Any, exc: BaseException) -> EnvError | None:
    if not isinstance(exc, gym.error.DependencyNotInstalled):
        return None
    entry = str(getattr(spec, "entry_point", ""))
    extra = next((x for prefix, x in EXTRAS.items() if entry.startswith(prefix)), None)
    if extra is None:
        return EnvError(f"env.id = {env_id!r}: a dependency is missing ({_first_line(exc)})")
    return EnvError(_extra_line(env_id, extra))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """gymnasium's deprecation chatter (warnings, and prints to stderr) goes nowhere."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _atari_game(env_id: str, kwargs: Mapping[str, Any] | None) -> tuple[str, dict]:
    """The ROM name and the checked kwargs of an `ALE/...` id."""
    from d3q_core.envs import atari

    try:
        return atari.game_of(gym.spec(env_id)), atari.check_kwargs(env_id, kwargs or {})
    except ValueError as exc:
        raise EnvError(str(exc)) from None


def make_env(env_id: str, kwargs: Mapping[str, Any] | None = None, **extra: Any) -> gym.Env:
    """One env, quietly, for the preview, the eval command and the checks; `extra`
    (render_mode, say) goes beside the user's kwargs. A pixel env plays as evaluation does
    (whole games, raw scores) and observes what the policy was trained on."""
    family = prepare_family(env_id)
    if family == "atari":
        from d3q_core.envs.atari import PlayEnv

        game, kw = _atari_game(env_id, kwargs)
        return PlayEnv(game, kw, render_mode=extra.get("render_mode"))  # type: ignore[return-value]
    if family == "minatar":
        from d3q_core.envs.minatar import CrispRender, make_kwargs

        # its render warns at every call (floats, no fps): not on a dashboard's terminal
        with _quiet():
            return CrispRender(gym.make(env_id, **make_kwargs(kwargs),
                                        **{"disable_env_checker": True, **extra}))
    with _quiet():
        return gym.make(env_id, **{**dict(kwargs or {}), **extra})


def inspect_env(env_id: str, kwargs: Mapping[str, Any] | None = None) -> EnvInfo:
    """Build the env once and check it fits d3q; raises EnvError with a one-line reason."""
    family = prepare_family(env_id)
    try:
        spec = gym.spec(env_id.split(":", 1)[-1])  # the module is imported above
    except Exception as exc:  # gymnasium raises several error types for unknown ids
        raise EnvError(f"env.id = {env_id!r}: unknown environment ({_first_line(exc)})") \
            from None
    try:
        env = make_env(env_id, kwargs)
    except EnvError:
        raise
    except Exception as exc:
        missing = _needs_extra(env_id, spec, exc)
        if missing is not None:
            raise missing from None
        if kwargs and isinstance(exc, TypeError):
            raise EnvError(f"env.kwargs = {dict(kwargs)!r}: {env_id} rejects them "
                           f"({_first_line(exc)})") from None
        raise EnvError(f"env.id = {env_id!r}: cannot be created ({_first_line(exc)})") \
            from None
    try:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            kind = type(env.action_space).__name__
            raise EnvError(f"env.id = {env_id!r}: action space is {kind}; d3q needs Discrete")
        obs = env.observation_space
        shape = tuple(int(d) for d in getattr(obs, "shape", None) or ())
        if family == "vector" and (not isinstance(obs, gym.spaces.Box) or len(shape) != 1):
            raise EnvError(
                f"env.id = {env_id!r}: observations are {type(obs).__name__}{shape or ''}; "
                "d3q needs a 1-D Box, or an Atari (ALE/...) or MinAtar (MinAtar/...) env"
            )
        stack = {"atari": len(shape) and shape[0], "minatar": 1}.get(family, 0)
        return EnvInfo(
            id=env_id,
            obs_shape=shape,
            n_actions=int(env.action_space.n),
            reward_threshold=spec.reward_threshold,
            max_episode_steps=spec.max_episode_steps,
            family=family,
            stack=int(stack),
        )
    finally:
        env.close()


def make_vector_env(env_id: str, n: int, seed: int,
                    kwargs: Mapping[str, Any] | None = None,
                    native: bool = True, training: bool = True) -> gym.vector.VectorEnv:
    """K copies stepped together: the env's native NumPy vector implementation where it has
    one (CartPole's is ~3x faster than looping over copies; Atari's is ale-py's, see
    envs/atari.py), else (or with native=False) a synchronous vector of single envs, whose
    copy i seeded seed + i plays exactly what a single env reset with seed + i plays.
    `training=False`: as evaluation plays (Atari: whole games; the same env elsewhere).

    Both use next-step autoreset: the step that ends an episode returns that episode's final
    observation, and the following step is a reset step whose action is ignored, so the
    simulator drops it and no transition spans two episodes."""
    family = prepare_family(env_id)
    if family == "atari":
        from d3q_core.envs.atari import vector_env

        game, kw = _atari_game(env_id, kwargs)
        env = vector_env(game, n, training=training, kwargs=kw)
        env.reset(seed=seed)
        return env
    if family == "minatar":
        from d3q_core.envs.minatar import make_kwargs

        kwargs, native = make_kwargs(kwargs), False
    kw = dict(kwargs or {})
    with _quiet():
        try:
            if not native:
                raise LookupError("a synchronous vector was asked for")
            env = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                               **kw)
        except Exception:
            env = gym.make_vec(
                env_id,
                num_envs=n,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP},
                **kw,
            )
    mode = env.metadata.get("autoreset_mode")
    if mode is not None and mode != gym.vector.AutoresetMode.NEXT_STEP:
        env.close()
        raise EnvError(f"env.id = {env_id!r}: vector env autoresets in {mode}, need NEXT_STEP")
    env.reset(seed=seed)
    return env


def seeds_for(base: int, count: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(base).generate_state(count)]
