"""`python -m bench suite`: the classic-control and Box2D envs with no flag but `--env` (so
each one's preset applies), a few seeds each, beside rl-zoo's published DQN results.

A seed passes when its run reached the env's reward threshold and the confirmation (the goal's
parameters on 100 fresh episodes) held at the threshold too.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.e2e_bench import _fmt, run_seed

# env: (reward threshold, rl-zoo DQN: mean ± std of the trained agent, its training env steps)
# from DLR-RM/rl-baselines3-zoo benchmark.md (one training run each; LunarLander is v2 there)
ENVS = {
    "CartPole-v1": (475.0, "500.0 ± 0.0", 50_000),
    "Acrobot-v1": (-100.0, "-76.6 ± 11.8", 100_000),
    "MountainCar-v0": (-110.0, "-100.8 ± 9.9", 120_000),
    "LunarLander-v3": (200.0, "154.4 ± 79.2 (v2)", 100_000),
}


def run_env(env_id: str, seeds: int, workdir: Path) -> dict:
    threshold, zoo, zoo_steps = ENVS[env_id]
    rows = []
    for seed in range(seeds):
        row = run_seed(seed, workdir / env_id, ["--env", env_id], timeout=7200)
        row["held"] = bool(row["solved"]) and (row.get("confirmed") or -1e18) >= threshold
        rows.append(row)
        print(f"  {env_id} seed {seed}: solved {'yes' if row['solved'] else 'no'}, "
              f"to goal {_fmt(row.get('seconds_to_goal'), '.1f')} s, "
              f"env steps {_fmt(row.get('env_steps_at_goal'), ',')}, confirmed "
              f"{_fmt(row.get('confirmed'), '.1f')}, wall {row['wall']:.0f} s", flush=True)

    def median(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None and r["solved"]]
        return statistics.median(values) if values else None

    return {"env": env_id, "threshold": threshold, "seeds": seeds,
            "solved": sum(r["solved"] for r in rows), "held": sum(r["held"] for r in rows),
            "median_seconds_to_goal": median("seconds_to_goal"),
            "median_env_steps_at_goal": median("env_steps_at_goal"),
            "median_confirmed": median("confirmed"), "rl_zoo_dqn": zoo,
            "rl_zoo_env_steps": zoo_steps, "rows": rows}


def run(seeds: int = 5, envs: list[str] | None = None) -> dict:
    results = []
    with tempfile.TemporaryDirectory(prefix="d3q-suite-") as tmp:
        for env_id in envs or list(ENVS):
            results.append(run_env(env_id, seeds, Path(tmp)))
    print("\n| env | threshold | reached and held | median time to goal | median env steps "
          "to goal | median confirmed | rl-zoo DQN (its env steps) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['env']} | {r['threshold']:g} | {r['held']}/{r['seeds']} | "
              f"{_fmt(r['median_seconds_to_goal'], '.1f')} s | "
              f"{_fmt(r['median_env_steps_at_goal'], ',.0f')} | "
              f"{_fmt(r['median_confirmed'], '.1f')} | "
              f"{r['rl_zoo_dqn']} ({r['rl_zoo_env_steps']:,}) |")
    return {"envs": results}
