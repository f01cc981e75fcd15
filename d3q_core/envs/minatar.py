"""MinAtar through the `minatar` package (d3q's `minatar` extra): `MinAtar/<Game>-v1` ids
(v1: each game's minimal action set; v0: all 6 actions), 10x10 boolean frames with one
channel per kind of object, played as a synchronous vector of gymnasium envs.

Importing minatar registers nothing: `register()` does, once per process. Its specs carry no
episode cap and no reward threshold, and a good Breakout or Seaquest player can go on for
ever, so training and evaluation both cap an episode at MAX_STEPS (a truncation: training
bootstraps from it). `env.kwargs.max_episode_steps` changes the cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

MAX_STEPS = 10_000  # ~40 minutes of human-speed play; random Breakout lasts ~10 steps
_registered = False


def register() -> None:
    """minatar's ids in gymnasium's registry (idempotent)."""
    global _registered
    if not _registered:
        import minatar.gym

        if "MinAtar/Breakout-v1" not in gym.registry:
            minatar.gym.register_envs()
        _registered = True


def make_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """gymnasium.make's kwargs for a MinAtar id: the user's, and the episode cap."""
    out = dict(kwargs or {})
    out.setdefault("max_episode_steps", MAX_STEPS)
    return out


RENDER_SCALE = 16  # 10x10 cells -> 160x160 pixels


class CrispRender(gym.Wrapper):
    """minatar renders its 10x10 cells as floats in [0, 1]; the preview and recorded videos
    take uint8 images: each cell becomes a RENDER_SCALE-pixel square."""

    def render(self):  # noqa: ANN201 - gymnasium's signature
        rgb = self.env.render()
        if rgb is None:
            return None
        rgb = (np.clip(np.asarray(rgb), 0.0, 1.0) * 255).astype(np.uint8)
        return rgb.repeat(RENDER_SCALE, axis=0).repeat(RENDER_SCALE, axis=1)
