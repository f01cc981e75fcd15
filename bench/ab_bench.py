"""A/B: this checkout against an older commit, alternated in one run.

    python -m bench ab --base aeac7ff            # time to goal (10 seeds each) and stages
    python -m bench ab --base aeac7ff --seeds 4 --no-stages

The base commit is checked out into a temporary git worktree and run with this checkout's
virtual environment (PYTHONPATH points at the worktree, so each side imports its own d3q and
its own bench code). Seeds alternate A B, B A, ... so that the drift of a shared machine falls
on both sides alike; the stages bench runs A B B A.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SEED_SCRIPT = """
import json, sys, pathlib
from bench import e2e_bench
row = e2e_bench.run_seed(int(sys.argv[1]), pathlib.Path(sys.argv[2]))
print("ROW " + json.dumps(row))
"""

STAGES_SCRIPT = """
import json
from bench import stages_bench
out = stages_bench.run()
print("ROW " + json.dumps(out, default=str))
"""


def _run(tree: Path, script: str, *args: str, timeout: float = 900.0) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("ROW "):
            return json.loads(line[4:])
    raise RuntimeError(f"{tree}: no result ({(proc.stderr or proc.stdout)[-400:]})")


def _worktree(base: str, where: Path) -> Path:
    path = where / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), base],
                   check=True, capture_output=True)
    return path


def _summary(rows: list[dict]) -> dict:
    times = [r["seconds_to_goal"] for r in rows if r.get("seconds_to_goal") is not None]
    return {"solved": sum(bool(r["solved"]) for r in rows), "seeds": len(rows),
            "median_seconds_to_goal": statistics.median(times) if times else None,
            "confirmed_at_least_475": sum(1 for r in rows if (r.get("confirmed") or 0) >= 475),
            "seconds": times}


def _stage_figures(out: dict) -> dict:
    return {"simulator_ratio": out["simulators"]["ratio"],
            "replay_service_ratio": out["replay_service"]["ratio"],
            "learner_ratio": out["learner"]["ratio"],
            "learner_pipeline": out["learner"]["pipeline_samples_per_s"],
            "learner_isolated": out["learner"]["isolated_samples_per_s"],
            "learner_wait": out["learner"]["wait_fraction"],
            "broadcast_ms": (out.get("broadcast_latency_s") or 0) * 1000}


def run(base: str, seeds: int = 10, stages: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="d3q-ab-") as tmp:
        old = _worktree(base, Path(tmp))
        sides = {"base": old, "new": ROOT}
        try:
            rows: dict[str, list[dict]] = {"base": [], "new": []}
            for side in ("base", "new"):  # untimed: compiles the numba kernels into the cache
                (Path(tmp) / "warm").mkdir(exist_ok=True)
                _run(sides[side], SEED_SCRIPT, "99", str(Path(tmp) / "warm" / side))
            for seed in range(seeds):
                order = ("base", "new") if seed % 2 == 0 else ("new", "base")
                for side in order:
                    work = Path(tmp) / side
                    work.mkdir(exist_ok=True)
                    row = _run(sides[side], SEED_SCRIPT, str(seed), str(work))
                    rows[side].append(row)
                    print(f"{side:4s} seed {seed}: to goal {row.get('seconds_to_goal')} s, "
                          f"confirmed {row.get('confirmed')}", flush=True)
            out: dict = {"base": base, "e2e": {s: _summary(r) for s, r in rows.items()}}
            for side, s in out["e2e"].items():
                print(f"{side}: solved {s['solved']}/{s['seeds']}, median "
                      f"{s['median_seconds_to_goal']:.1f} s to goal, confirmed >= 475 in "
                      f"{s['confirmed_at_least_475']}/{s['seeds']}")
            if stages:
                figures: dict[str, list[dict]] = {"base": [], "new": []}
                for side in ("base", "new", "new", "base"):
                    figures[side].append(_stage_figures(_run(sides[side], STAGES_SCRIPT)))
                    print(f"{side} stages: {figures[side][-1]}", flush=True)
                out["stages"] = {side: {key: statistics.mean(f[key] for f in runs)
                                        for key in runs[0]}
                                 for side, runs in figures.items()}
                for side, f in out["stages"].items():
                    print(f"{side} stages (mean of 2): simulator {f['simulator_ratio']:.0%} of "
                          f"raw, replay service {f['replay_service_ratio']:.0%}, learner "
                          f"{f['learner_ratio']:.1%} of isolated ({f['learner_pipeline']:,.0f}"
                          f" vs {f['learner_isolated']:,.0f}), waits {f['learner_wait']:.1%},"
                          f" broadcast {f['broadcast_ms']:.1f} ms")
            return out
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           capture_output=True)
