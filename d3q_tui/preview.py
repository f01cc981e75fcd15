"""The preview window: a pygame window tiling envs that play greedily with the newest
parameters, each tile overlaid with the parameter version, learner samples and the return of
the episode so far.

It runs as its own process (spawned by the dashboard, or `d3q-tui preview RUN_DIR` reading
checkpoints), pumps events every frame so it never freezes, and exits when its window is
closed, when told to stop, or when its parent dies.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from d3q_core.qnet import NumpyQNet, QNetSpec

TILE = (360, 240)
FPS = 30


class StoreSource:
    """Newest parameters from the live run's shared memory."""

    def __init__(self, params: Any):
        self.params, self.version = params, 0

    def poll(self) -> tuple[np.ndarray, dict] | None:
        got = self.params.read(newer_than=self.version)
        if got is None:
            return None
        flat, meta = got
        self.version = meta.version
        return flat, {"version": meta.version, "learner_samples": meta.learner_samples}


class CheckpointSource:
    """Newest checkpoint of a run directory, reloaded when a newer one appears."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.current: Path | None = None
        self.spec: QNetSpec | None = None
        self.next_check = 0.0

    def poll(self) -> tuple[np.ndarray, dict] | None:
        from d3q_core.checkpoint import CheckpointError, newest_checkpoint, read_policy

        now = time.monotonic()
        if now < self.next_check:
            return None
        self.next_check = now + 1.0
        path = newest_checkpoint(self.run_dir)
        if path is None:
            best = self.run_dir / "checkpoints" / "best.npz"
            path = best if best.is_file() else None
        if path is None or path == self.current:
            return None
        try:
            spec, flat, meta = read_policy(path)
        except CheckpointError:
            return None
        self.current, self.spec = path, spec
        return flat, meta


class Tile:
    """One env copy playing greedily; restarts its episode when it ends."""

    def __init__(self, env_id: str, seed: int):
        import gymnasium as gym

        self.env = gym.make(env_id, render_mode="rgb_array")
        self.seed = seed
        self.obs, _ = self.env.reset(seed=seed)
        self.ret, self.last_ret, self.episodes = 0.0, None, 0

    def step(self, qnet: NumpyQNet | None) -> None:
        if qnet is None:
            action = self.env.action_space.sample()
        else:
            action = int(qnet.act(np.asarray(self.obs, np.float32)[None])[0])
        self.obs, reward, term, trunc, _ = self.env.step(action)
        self.ret += float(reward)
        if term or trunc:
            self.last_ret, self.ret = self.ret, 0.0
            self.episodes += 1
            self.obs, _ = self.env.reset(seed=self.seed + 1000 * self.episodes)


def run_window(env_id: str, spec: QNetSpec | None, source: Any, grid: tuple[int, int] = (2, 2),
               max_frames: int | None = None,
               frame_callback: Callable[[Any, int], None] | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> int:
    """The window's loop; returns 0 when closed."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    cols, rows = grid
    pygame.init()
    screen = pygame.display.set_mode((TILE[0] * cols, TILE[1] * rows))
    pygame.display.set_caption(f"d3q preview: {env_id}")
    font = pygame.font.Font(None, 22)
    clock = pygame.time.Clock()
    tiles = [Tile(env_id, 10_000 + 7 * i) for i in range(cols * rows)]
    qnet: NumpyQNet | None = None
    meta: dict = {}
    frame = 0
    try:
        while not should_stop():
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (
                        event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE,
                                                                        pygame.K_q)):
                    return 0
            got = source.poll()
            if got is not None:
                flat, meta = got
                spec = getattr(source, "spec", None) or spec
                if spec is not None:
                    qnet = NumpyQNet(spec, flat)
            screen.fill((18, 18, 24))
            for i, tile in enumerate(tiles):
                tile.step(qnet)
                x, y = (i % cols) * TILE[0], (i // cols) * TILE[1]
                rgb = tile.env.render()
                surf = pygame.surfarray.make_surface(np.ascontiguousarray(rgb.swapaxes(0, 1)))
                screen.blit(pygame.transform.smoothscale(surf, TILE), (x, y))
                pygame.draw.rect(screen, (70, 70, 90), (x, y, TILE[0], TILE[1]), 1)
                lines = [
                    f"v{meta.get('version', 0)}  {meta.get('learner_samples', 0):,} samples"
                    if qnet is not None else "waiting for parameters (random play)",
                    f"return {tile.ret:.0f}" + (f"   last {tile.last_ret:.0f}"
                                                if tile.last_ret is not None else ""),
                ]
                for j, text in enumerate(lines):
                    img = font.render(text, True, (20, 20, 20), (235, 235, 235))
                    screen.blit(img, (x + 6, y + 6 + 20 * j))
            pygame.display.flip()
            if frame_callback is not None:
                frame_callback(screen, frame)
            frame += 1
            if max_frames is not None and frame >= max_frames:
                return 0
            clock.tick(FPS)
    finally:
        for tile in tiles:
            tile.env.close()
        pygame.quit()
    return 0


def _preview_process_main(env_id: str, spec: QNetSpec, params: Any, grid: tuple[int, int],
                          stop: Any) -> None:
    from d3q_core.proc import child_setup, set_title

    child_setup("d3q: preview")
    set_title("d3q: preview")
    code = run_window(env_id, spec, StoreSource(params), grid, should_stop=stop.is_set)
    os._exit(code)


class PreviewProcess:
    """The window as a child of the dashboard, fed from the live parameter store."""

    def __init__(self, env_id: str, spec: QNetSpec, params: Any, grid: tuple[int, int] = (2, 2)):
        from d3q_core.proc import spawn_context

        self.ctx = spawn_context()
        self.stop_event = self.ctx.Event()
        self.process: mp.process.BaseProcess = self.ctx.Process(
            target=_preview_process_main, args=(env_id, spec, params, grid, self.stop_event),
            name="d3q-preview", daemon=True)

    def start(self) -> None:
        self.process.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def is_alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        if self.process.pid is None:
            return
        self.stop_event.set()
        self.process.join(3)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(3)


def preview_main(run_dir: Path, grid: tuple[int, int] = (2, 2)) -> int:
    """`d3q-tui preview RUN_DIR`: play the newest checkpoint, reloading newer ones."""
    from d3q_core.rundir import RunDir

    rd = RunDir.open_existing(run_dir)
    env_id = rd.read_config().env.id
    return run_window(env_id, None, CheckpointSource(rd.path), grid)
