"""Time-to-goal: the default configuration headless on CartPole-v1, one seed after another.

Each seed is a fresh `d3q-tui --no-ui` command; seconds are counted from the command's start
(interpreter start-up, TensorFlow import and process spawning included) to the evaluation
that reached the goal, as result.json records them.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OWN_WARNING = re.compile(r"\s*\d+\.\ds (warning|error)\s")


def run_seed(seed: int, workdir: Path, extra: list[str] | None = None,
             timeout: float = 600.0) -> dict:
    run_dir = workdir / f"seed-{seed}"
    cmd = [sys.executable, "-m", "d3q_tui.cli", "--no-ui", "--seed", str(seed),
           "--run-dir", str(run_dir), *(extra or [])]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.time() - t0
    result_path = run_dir / "result.json"
    if not result_path.exists():
        return {"seed": seed, "solved": False, "exit_code": proc.returncode, "wall": wall,
                "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    r = json.loads(result_path.read_text())
    for line in (run_dir / "log.txt").read_text().splitlines():
        if OWN_WARNING.match(line):  # d3q's own warnings, not the roles' captured stderr
            print(f"  seed {seed}: {line.strip()}", flush=True)
    return {
        "seed": seed,
        "solved": bool(r["solved"]),
        "exit_code": proc.returncode,
        "seconds_to_goal": r["seconds_to_goal"],
        "learner_samples_at_goal": r["learner_samples_at_goal"],
        "env_steps_at_goal": r["env_steps_at_goal"],
        "confirmed": r["confirmed_eval_mean"],
        "wall": wall,
    }


def _median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def run(seeds: int = 10, extra: list[str] | None = None) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="d3q-bench-") as tmp:
        for seed in range(seeds):
            row = run_seed(seed, Path(tmp), extra)
            rows.append(row)
            print(_format_row(row), flush=True)
    summary = {
        "seeds": seeds,
        "solved": sum(r["solved"] for r in rows),
        "median_seconds_to_goal": _median(rows, "seconds_to_goal"),
        "median_learner_samples_at_goal": _median(rows, "learner_samples_at_goal"),
        "median_env_steps_at_goal": _median(rows, "env_steps_at_goal"),
        "median_confirmed": _median(rows, "confirmed"),
        "confirmed_at_least_475": sum(1 for r in rows if (r.get("confirmed") or 0) >= 475),
    }
    print(f"solved {summary['solved']}/{seeds}; medians: "
          f"{_fmt(summary['median_seconds_to_goal'], '.1f')} s to goal, "
          f"{_fmt(summary['median_learner_samples_at_goal'], ',.0f')} learner samples, "
          f"{_fmt(summary['median_env_steps_at_goal'], ',.0f')} env steps, "
          f"confirmed {_fmt(summary['median_confirmed'], '.1f')} "
          f"({summary['confirmed_at_least_475']}/{seeds} >= 475)")
    return {"rows": rows, "summary": summary}


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _format_row(r: dict) -> str:
    return (f"seed {r['seed']:2d}  solved {'yes' if r['solved'] else 'no ':3s}  "
            f"to goal {_fmt(r.get('seconds_to_goal'), '6.1f')} s  "
            f"learner samples {_fmt(r.get('learner_samples_at_goal'), '>9,')}  "
            f"env steps {_fmt(r.get('env_steps_at_goal'), '>8,')}  "
            f"confirmed {_fmt(r.get('confirmed'), '6.1f')}  wall {r['wall']:.1f} s"
            + (f"  error {r['error']}" if r.get("error") else ""))


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
