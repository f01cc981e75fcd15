"""`d3q-tui eval RUN_DIR`: greedy episodes of a saved policy, headless, with the score's
mean, std, min and max written to eval-<time>.json in the run directory, and optionally a
video of each episode.

The episodes play in lock-step, one env copy each, episode i in a single env reset with
seed + i (a synchronous vector: an env's native vector implementation, which the run's
evaluator uses for speed, seeds its copies its own way). `record` plays the first
`record_episodes` of them again, one after another in a rendering env seeded the same way,
and writes each one's video: the policy is greedy and the env seeded alike, so a video is
the very episode the statistics count (its return is in the report beside the video, and a
test holds them equal).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from d3q_core.algo.evaluation import evaluate
from d3q_core.policy import Policy, load_policy
from d3q_core.storage.atomic import write_text_atomic
from d3q_core.tools import ToolError
from d3q_core.tools.video import FORMATS as VIDEO_FORMATS
from d3q_core.tools.video import VideoWriter

MAX_STEPS = 100_000  # per episode, for envs without a time limit of their own


@dataclass
class EvalReport:
    run_dir: str
    checkpoint: str
    env_id: str
    episodes: int
    seed: int
    mean: float
    std: float
    min: float
    max: float
    returns: list[float]
    seconds: float
    learner_samples: int | None = None
    videos: list[str] = field(default_factory=list)
    video_returns: list[float] = field(default_factory=list)
    path: str | None = None  # the eval-<time>.json written

    def line(self) -> str:
        return (f"{self.env_id}: {self.episodes} episodes, mean {self.mean:.2f} "
                f"± {self.std:.2f}, min {self.min:g}, max {self.max:g}")


def play_recorded(policy: Policy, episodes: int, seed: int, out_dir: Path, fmt: str = "mp4",
                  max_steps: int = MAX_STEPS) -> tuple[list[float], list[str]]:
    """Episodes one after another, each rendered into out_dir/episode-<i>.<fmt>."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # rgb frames need no display; without one SDL complains on stderr (XDG_RUNTIME_DIR)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = policy.make_env(render_mode="rgb_array")
    fps = int(env.metadata.get("render_fps") or 30)
    returns, videos = [], []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            # a GIF is for a README: half the frames at half the rate look the same
            writer = VideoWriter(out_dir / f"episode-{i:03d}.{fmt}", fps,
                                 every=2 if fmt == "gif" else 1)
            try:
                writer.add(env.render())
                total = 0.0
                for _ in range(max_steps):
                    obs, reward, term, trunc, _ = env.step(policy.act(obs))
                    total += float(reward)
                    writer.add(env.render())
                    if term or trunc:
                        break
            except BaseException:
                writer.abort()
                raise
            videos.append(str(writer.close()))
            returns.append(total)
    finally:
        env.close()
    return returns, videos


def _report_path(run_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, k = run_dir / f"eval-{stamp}.json", 1
    while path.exists():  # two evaluations in one second
        k += 1
        path = run_dir / f"eval-{stamp}-{k}.json"
    return path


def evaluate_run(run_dir: str | Path, checkpoint: str = "auto", episodes: int = 100,
                 seed: int = 0, record: str | Path | None = None, record_episodes: int = 3,
                 video_format: str = "mp4", write: bool = True) -> EvalReport:
    run_dir = Path(run_dir)
    if episodes < 1:
        raise ToolError(f"--episodes {episodes}: must be at least 1")
    if record is not None and not 1 <= record_episodes <= episodes:
        raise ToolError(f"--record-episodes {record_episodes}: must be 1..{episodes} "
                         "(the episodes evaluated)")
    if video_format not in VIDEO_FORMATS:
        raise ToolError(f"--video {video_format!r}: must be one of {', '.join(VIDEO_FORMATS)}")
    policy = load_policy(run_dir, checkpoint)
    t0 = time.monotonic()
    values = evaluate(policy.network, policy.env_id, episodes, seed, MAX_STEPS,
                      env_kwargs=policy.env_kwargs, native=False)
    videos: list[str] = []
    video_returns: list[float] = []
    if record is not None:
        video_returns, videos = play_recorded(policy, record_episodes, seed, Path(record),
                                              video_format)
    report = EvalReport(
        run_dir=str(run_dir), checkpoint=str(policy.checkpoint), env_id=policy.env_id,
        episodes=episodes, seed=seed, mean=float(values.mean()), std=float(values.std()),
        min=float(values.min()), max=float(values.max()),
        returns=[float(v) for v in values], seconds=time.monotonic() - t0,
        learner_samples=policy.meta.get("learner_samples"), videos=videos,
        video_returns=video_returns)
    if write:
        path = _report_path(run_dir)
        report.path = str(path)
        write_text_atomic(path, json.dumps(asdict(report), indent=2) + "\n")
    return report
