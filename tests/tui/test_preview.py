"""The preview window under SDL's dummy video driver: it draws real frames, picks up new
parameters live (from the ParamStore, or from a run's newest checkpoint), stops when told,
and dies with its parent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from d3q_core.algo.qnet import QNetSpec, init_weights
from d3q_core.backends.local.process import spawn_context
from d3q_core.backends.local.shared import ParamStore
from d3q_core.config import Config
from d3q_core.storage.checkpoint import save_checkpoint
from d3q_core.storage.rundir import RunDir
from d3q_tui.preview import PreviewProcess, StoreSource, preview_main, run_window

SPEC = QNetSpec(4, 2, (16,), True)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def weights(seed: int) -> np.ndarray:
    return init_weights(SPEC, np.random.default_rng(seed))


class Recorder:
    """frame_callback: keeps overlay text per frame and copies of chosen frames."""

    def __init__(self, on_frame=None, keep=()):
        self.overlays: list[list[str]] = []
        self.pixels: dict[int, np.ndarray] = {}
        self.on_frame, self.keep = on_frame, set(keep)

    def __call__(self, surface, frame: int, overlays: list[str]) -> None:
        import pygame

        self.overlays.append(overlays)
        if frame in self.keep:
            self.pixels[frame] = pygame.surfarray.array3d(surface).copy()
        if self.on_frame is not None:
            self.on_frame(frame)


def test_frames_are_drawn_and_the_overlay_follows_new_versions():
    params = ParamStore(spawn_context(), SPEC.n_params)
    params.publish(weights(1), learner_samples=1_000, env_steps=500)
    rec = Recorder(on_frame=lambda f: f == 5 and params.publish(weights(2), 64_000, 9_000),
                   keep=(4, 9))
    assert run_window("CartPole-v1", SPEC, StoreSource(params), grid=(2, 2), max_frames=10,
                      frame_callback=rec) == 0
    assert len(rec.overlays) == 10
    assert rec.overlays[0][0] == "#1  v1  ·  1,000 samples"
    assert rec.overlays[9][0] == "#1  v2  ·  64,000 samples"
    assert len(rec.overlays[0]) == 8 and rec.overlays[0][6].startswith("#4")  # 4 tiles
    assert rec.overlays[9][1].startswith("return ")
    before, after = rec.pixels[4], rec.pixels[9]
    assert before.shape == (720, 600, 3)  # (width, height): 2 x 2 tiles of 360 x 300
    colours = np.unique(before.reshape(-1, 3), axis=0)
    assert len(colours) > 50 and before.std() > 20  # envs, overlay text: not a blank window
    band = (slice(0, 360), slice(0, 30))  # tile 1's overlay band
    assert not np.array_equal(before[band], after[band])  # the new version is on screen


class RedScreen:
    """An env whose render is one red 200 x 100 (w x h) picture: where it lands is plain."""

    def __new__(cls, render_mode=None):
        import gymnasium as gym

        class _Env(gym.Env):
            metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
            observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
            action_space = gym.spaces.Discrete(2)

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                return np.zeros(4, np.float32), {}

            def step(self, action):
                return np.zeros(4, np.float32), 0.0, False, False, {}

            def render(self):
                frame = np.zeros((100, 200, 3), np.uint8)
                frame[..., 0] = 255
                return frame

        return _Env()


def test_the_overlay_band_sits_above_the_game_which_keeps_its_shape():
    import gymnasium as gym

    gym.register("d3q-test/RedScreen-v0", entry_point=RedScreen)
    rec = Recorder(keep=(1,))
    run_window("d3q-test/RedScreen-v0", SPEC, StoreSource(ParamStore(spawn_context(),
               SPEC.n_params)), grid=(1, 1), max_frames=2, frame_callback=rec)
    frame = rec.pixels[1]  # (x, y, rgb) of one 360 x 300 tile
    red = (frame[..., 0] > 200) & (frame[..., 1] < 60)
    xs, ys = np.nonzero(red)
    band = 12 + 18 * 2
    assert ys.min() >= band + 3  # nothing of the game under the band or the progress line
    assert ys.max() < 300 and xs.max() < 360
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert width / height == pytest.approx(2.0, rel=0.03)  # 200 x 100, not stretched
    top = frame[:, :band].astype(int)
    assert not (top[..., 0] > top[..., 1] + 40).any()  # no red seen through it


def test_random_play_until_parameters_arrive():
    params = ParamStore(spawn_context(), SPEC.n_params)
    rec = Recorder()
    run_window("CartPole-v1", SPEC, StoreSource(params), grid=(1, 1), max_frames=3,
               frame_callback=rec)
    assert "waiting for parameters" in rec.overlays[0][0]


def test_preview_main_reloads_a_newer_checkpoint(tmp_path):
    rd = RunDir.create(tmp_path, "CartPole-v1", tmp_path / "run")
    rd.write_config(Config())
    meta = {"version": 7, "learner_samples": 7_000, "env_steps": 0, "env_id": "CartPole-v1",
            "spec": SPEC.to_dict()}
    save_checkpoint(rd.checkpoints, {"online": weights(1)}, meta)

    def newer(frame: int) -> None:
        if frame == 2:
            save_checkpoint(rd.checkpoints, {"online": weights(2)},
                            {**meta, "version": 9, "learner_samples": 9_000})
        time.sleep(0.02)

    rec = Recorder(on_frame=newer)
    assert preview_main(rd.path, grid=(1, 1), max_frames=12, frame_callback=rec,
                        poll_s=0.1) == 0
    heads = [o[0] for o in rec.overlays]
    assert heads[0] == "#1  v7  ·  7,000 samples" and heads[-1] == "#1  v9  ·  9,000 samples"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_preview_process_starts_names_itself_and_stops():
    params = ParamStore(spawn_context(), SPEC.n_params)
    params.publish(weights(1), 1_000, 0)
    preview = PreviewProcess("CartPole-v1", SPEC, params, grid=(2, 1))
    preview.start()
    try:
        assert preview.pid and preview.is_alive()
        proc = psutil.Process(preview.pid)
        wait_for(lambda: "d3q: preview" in " ".join(proc.cmdline()), 10, "the process title")
        time.sleep(0.5)  # it keeps running: the window loop, not a crash
        assert preview.is_alive()
    finally:
        t0 = time.monotonic()
        preview.stop()
    assert not preview.is_alive() and time.monotonic() - t0 < 4
    assert preview.process.exitcode == 0  # closed its window, not terminated


def test_preview_dies_with_its_parent(tmp_path):
    script = textwrap.dedent("""
        import os, sys, time
        from d3q_core.backends.local.shared import ParamStore
        from d3q_core.backends.local.process import spawn_context
        from d3q_core.algo.qnet import QNetSpec
        from d3q_tui.preview import PreviewProcess

        if __name__ == "__main__":
            spec = QNetSpec(4, 2, (16,), True)
            preview = PreviewProcess("CartPole-v1", spec, ParamStore(spawn_context(),
                                                                     spec.n_params))
            preview.start()
            print(preview.pid, flush=True)
            time.sleep(1.5)
            os._exit(0)  # no stop(), no cleanup: as if killed
    """)
    path = tmp_path / "parent.py"
    path.write_text(script)
    parent = subprocess.run([sys.executable, str(path)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    pid = int(parent.stdout.split()[0])

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, 10, "the orphaned preview to exit")
