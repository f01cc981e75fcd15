"""The preview window: a pygame window tiling envs that play greedily with the newest
parameters, each tile overlaid with the parameter version, learner samples and the return of
its episode so far.

It runs as its own process (spawned by the dashboard, fed from the live ParamStore; or
`d3q-tui preview RUN_DIR`, reading the newest checkpoint and reloading newer ones). It pumps
events every frame so it never freezes, and ends when its window is closed, when told to
stop, or when its parent dies. NumPy forward passes only: no TensorFlow here.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from d3q_core.algo.qnet import NumpyQNet, QNetSpec

TILE = (360, 300)  # initial tile size (a 2-line band, then the game); resizable
MAX_FPS = 60
BG, FRAME, BAND, TEXT, DIM = (18, 18, 24), (70, 70, 90), (16, 16, 22), (235, 235, 240), \
    (150, 150, 165)
GOOD, WARN = (120, 200, 110), (230, 180, 80)

FrameCallback = Callable[[Any, int, list[str]], None]  # (surface, frame, overlay lines)


class NoDisplayError(RuntimeError):
    """SDL found no screen and fell back to drawing off screen: nobody would see a window."""


class StoreSource:
    """Newest parameters from the live run's shared memory (never blocks the learner)."""

    def __init__(self, params: Any):
        self.params, self.version = params, 0
        self.spec: QNetSpec | None = None

    def poll(self) -> tuple[np.ndarray, dict] | None:
        got = self.params.read(newer_than=self.version)
        if got is None:
            return None
        flat, meta = got
        self.version = meta.version
        return flat, {"version": meta.version, "learner_samples": meta.learner_samples}


class CheckpointSource:
    """Newest checkpoint of a run directory, reloaded when a newer one appears."""

    def __init__(self, run_dir: Path, poll_s: float = 1.0):
        self.run_dir = Path(run_dir)
        self.poll_s = poll_s
        self.current: Path | None = None
        self.current_mtime = 0.0
        self.spec: QNetSpec | None = None
        self.next_check = 0.0

    def poll(self) -> tuple[np.ndarray, dict] | None:
        from d3q_core.storage.checkpoint import CheckpointError, newest_checkpoint, read_policy

        now = time.monotonic()
        if now < self.next_check:
            return None
        self.next_check = now + self.poll_s
        path = newest_checkpoint(self.run_dir)
        if path is None:  # a finished run may have pruned all but best.npz
            best = self.run_dir / "checkpoints" / "best.npz"
            path = best if best.is_file() else None
        if path is None:
            return None
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        if path == self.current and mtime == self.current_mtime:
            return None
        try:
            spec, flat, meta = read_policy(path)
        except CheckpointError:
            return None  # half-written or damaged: try again next poll
        self.current, self.current_mtime, self.spec = path, mtime, spec
        return flat, meta


class Tile:
    """One env copy playing greedily; starts a new episode when one ends."""

    def __init__(self, env_id: str, seed: int, env_kwargs: Mapping[str, Any] | None = None):
        from d3q_core.envs import make_env

        self.env = make_env(env_id, env_kwargs, render_mode="rgb_array")
        self.seed = seed
        self.limit = getattr(self.env.spec, "max_episode_steps", None)  # CartPole-v1: 500
        self.obs, _ = self.env.reset(seed=seed)
        self.ret, self.last_ret, self.episodes, self.steps = 0.0, None, 0, 0

    def step(self, qnet: NumpyQNet | None) -> None:
        if qnet is None:
            action = self.env.action_space.sample()
        else:
            action = int(qnet.act(np.asarray(self.obs)[None])[0])
        self.obs, reward, term, trunc, _ = self.env.step(action)
        self.ret += float(reward)
        self.steps += 1
        if term or trunc:
            self.last_ret, self.ret, self.steps = self.ret, 0.0, 0
            self.episodes += 1
            self.obs, _ = self.env.reset(seed=self.seed + 1000 * self.episodes)


def overlay_lines(index: int, tile: Tile, meta: dict | None) -> list[str]:
    """What a tile says about itself: which parameters play, and how well."""
    if meta is None:
        head = f"#{index + 1}  waiting for parameters (random play)"
    else:
        head = f"#{index + 1}  v{meta.get('version', 0)}  ·  " \
               f"{int(meta.get('learner_samples', 0)):,} samples"
    tail = f"return {tile.ret:.0f}"
    if tile.last_ret is not None:
        tail += f"   last {tile.last_ret:.0f}   episodes {tile.episodes}"
    return [head, tail]


def fit(size: tuple[int, int], area: Any, pygame: Any) -> Any:
    """The largest rect of `size`'s aspect inside `area`, centred: the game undistorted."""
    w, h = size
    scale = min(area.width / max(w, 1), area.height / max(h, 1))
    fitted = pygame.Rect(0, 0, max(1, round(w * scale)), max(1, round(h * scale)))
    fitted.center = area.center
    return fitted


def _draw_tile(pygame: Any, screen: Any, font: Any, tile: Tile, rect: Any,
               lines: list[str], fresh: bool) -> None:
    """The overlay in a band of its own at the top, the game below it: over the game, the
    band hid what pixel games draw there (MinAtar Breakout's first row of bricks, Pong's
    score)."""
    height = 12 + 18 * len(lines)
    pygame.draw.rect(screen, BAND, (rect.x, rect.y, rect.width, height))
    for j, text in enumerate(lines):
        colour = (GOOD if fresh else TEXT) if j == 0 else TEXT
        screen.blit(font.render(text, True, colour), (rect.x + 8, rect.y + 6 + 18 * j))
    pygame.draw.rect(screen, (60, 60, 75), (rect.x, rect.y + height, rect.width, 3))
    if tile.limit:  # how far into the longest possible episode this one is
        done = min(1.0, tile.steps / tile.limit)
        pygame.draw.rect(screen, GOOD if done < 1 else WARN,
                         (rect.x, rect.y + height, int(rect.width * done), 3))
    game = pygame.Rect(rect.x, rect.y + height + 3, rect.width,
                       max(1, rect.height - height - 3))
    rgb = tile.env.render()
    if rgb is None:
        img = font.render("this env has no rgb_array rendering", True, DIM)
        screen.blit(img, (game.x + 8, game.centery))
    else:
        surf = pygame.image.frombuffer(np.ascontiguousarray(rgb[..., :3]).tobytes(),
                                       (rgb.shape[1], rgb.shape[0]), "RGB")
        where = fit(surf.get_size(), game, pygame)
        screen.blit(pygame.transform.smoothscale(surf, where.size), where.topleft)
    pygame.draw.rect(screen, FRAME, rect, 1)


def run_window(env_id: str, spec: QNetSpec | None, source: Any, grid: tuple[int, int] = (2, 2),
               max_frames: int | None = None, frame_callback: FrameCallback | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               env_kwargs: Mapping[str, Any] | None = None) -> int:
    """The window's loop; returns 0 when the window is closed (or max_frames are drawn)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    cols, rows = grid
    pygame.display.init()  # not pygame.init(): no audio device is wanted (or present)
    driver = pygame.display.get_driver()
    if driver in ("offscreen", "dummy") and not os.environ.get("SDL_VIDEODRIVER"):
        pygame.quit()
        raise NoDisplayError(f"no display to open a window on (SDL fell back to {driver!r}); "
                             "is DISPLAY set?")
    pygame.font.init()
    screen = pygame.display.set_mode((TILE[0] * cols, TILE[1] * rows), pygame.RESIZABLE)
    pygame.display.set_caption(f"d3q preview · {env_id}")
    font = pygame.font.Font(None, 22)
    clock = pygame.time.Clock()
    tiles = [Tile(env_id, 10_000 + 7 * i, env_kwargs) for i in range(cols * rows)]
    fps = min(MAX_FPS, int(tiles[0].env.metadata.get("render_fps") or 30))
    parent = mp.parent_process()
    qnet: NumpyQNet | None = None
    meta: dict | None = None
    loaded_at = -1e9
    frame = 0
    try:
        while not should_stop():
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key in
                                                 (pygame.K_ESCAPE, pygame.K_q)):
                    return 0
            if parent is not None and not parent.is_alive():
                return 0  # the dashboard is gone: so is its window
            got = source.poll()
            if got is not None:
                flat, new_meta = got
                spec = getattr(source, "spec", None) or spec
                if spec is not None:
                    qnet, meta, loaded_at = NumpyQNet(spec, flat), new_meta, time.monotonic()
            w, h = screen.get_size()
            tw, th = max(1, w // cols), max(1, h // rows)
            screen.fill(BG)
            fresh = time.monotonic() - loaded_at < 1.0  # a new version flashes green
            overlays: list[str] = []
            for i, tile in enumerate(tiles):
                tile.step(qnet)
                lines = overlay_lines(i, tile, meta)
                overlays += lines
                rect = pygame.Rect((i % cols) * tw, (i // cols) * th, tw, th)
                _draw_tile(pygame, screen, font, tile, rect, lines, fresh)
            pygame.display.flip()
            if frame_callback is not None:
                frame_callback(screen, frame, overlays)
            frame += 1
            if max_frames is not None and frame >= max_frames:
                return 0
            clock.tick(fps)
    finally:
        for tile in tiles:
            tile.env.close()
        pygame.quit()
    return 0


def _preview_process_main(env_id: str, spec: QNetSpec, params: Any, grid: tuple[int, int],
                          stop: Any, env_kwargs: Mapping[str, Any] | None = None) -> None:
    from d3q_core.backends.local.process import child_setup

    child_setup("d3q: preview")  # names it, ignores SIGINT, dies with its parent
    try:
        code = run_window(env_id, spec, StoreSource(params), grid, should_stop=stop.is_set,
                          env_kwargs=env_kwargs)
    except NoDisplayError as exc:
        print(f"d3q preview: {exc}", file=sys.stderr)
        code = 1
    except BaseException:  # noqa: BLE001 - say why in the run's log.txt
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: nothing left to flush, nothing to hang on


class PreviewProcess:
    """The window as a child of the dashboard, fed from the live parameter store."""

    def __init__(self, env_id: str, spec: QNetSpec, params: Any, grid: tuple[int, int] = (2, 2),
                 env_kwargs: Mapping[str, Any] | None = None):
        from d3q_core.backends.local.process import spawn_context

        self.ctx = spawn_context()
        self.stop_event = self.ctx.Event()
        self.process = self.ctx.Process(
            target=_preview_process_main,
            args=(env_id, spec, params, grid, self.stop_event, env_kwargs),
            name="d3q-preview", daemon=True)

    def start(self) -> None:
        self.process.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def is_alive(self) -> bool:
        return self.process.is_alive()

    def stop(self, timeout: float = 3.0) -> None:
        """Ask it to close its window; kill it if it does not within `timeout`."""
        if self.process.pid is None:
            return
        self.stop_event.set()
        self.process.join(timeout)
        if self.process.is_alive():  # it ignores SIGTERM, as every d3q child does
            self.process.kill()
            self.process.join(timeout)


def preview_main(run_dir: Path, grid: tuple[int, int] = (2, 2), *,
                 max_frames: int | None = None, frame_callback: FrameCallback | None = None,
                 poll_s: float = 1.0) -> int:
    """`d3q-tui preview RUN_DIR`: play the run's newest checkpoint, reloading newer ones."""
    from d3q_core.storage.rundir import RunDir

    rd = RunDir.open_existing(Path(run_dir))
    env = rd.read_config().env
    try:
        return run_window(env.id, None, CheckpointSource(rd.path, poll_s), grid,
                          max_frames=max_frames, frame_callback=frame_callback,
                          env_kwargs=env.kwargs)
    except KeyboardInterrupt:
        return 130
    except NoDisplayError as exc:
        print(f"d3q-tui preview: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.split(".")[0] != "pygame":
            raise
        print(f"d3q-tui preview: cannot open a window: {exc}", file=sys.stderr)
        return 1
