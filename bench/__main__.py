"""`make bench`: every benchmark in one run, printed with its target, results saved as JSON.

    python -m bench                     # everything
    python -m bench replay learner      # chosen sections
    python -m bench e2e --seeds 3       # fewer seeds
    python -m bench ray                 # the Ray backend beside the local one
    python -m bench ab --base REV       # this checkout against commit REV, alternated
    python -m bench soak --minutes 20   # faults injected into a long run
    python -m bench suite --seeds 5     # four envs with their presets, beside rl-zoo
    python -m bench suite --env MountainCar-v0
    python -m bench pixels              # Atari and MinAtar throughput (in `make bench`)
    python -m bench minatar             # MinAtar learning runs (50 min) and their curves
    python -m bench atari --minutes 60  # one long Pong run and its curve
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import psutil

SECTIONS = ("replay", "learner", "stages", "e2e", "ray", "dashboard", "reliability", "pixels")


def machine() -> str:
    freq = psutil.cpu_freq()
    return (f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores"
            f"{f' @ {freq.max:.0f} MHz' if freq and freq.max else ''}, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench")
    # no `choices`: this Python's argparse refuses an empty `nargs="*"` list against them
    p.add_argument("sections", nargs="*", metavar="SECTION",
                   help=f"any of {', '.join(SECTIONS)} (default: all)")
    p.add_argument("--seeds", type=int, help="seeds per env (e2e: 10, suite: 5)")
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--out", default="bench/results.json")
    p.add_argument("--base", metavar="REV", help="ab: the commit to compare against")
    p.add_argument("--no-stages", action="store_true", help="ab: time to goal only")
    p.add_argument("--minutes", type=float, help="soak: length of the run (20); atari: "
                   "length of the Pong run (60)")
    p.add_argument("--env", action="append", dest="envs", metavar="ID",
                   help="suite: only this env (repeatable)")
    args = p.parse_args()
    if args.sections == ["ab"]:  # on demand only: not part of `make bench`
        from bench import ab_bench

        if not args.base:
            p.error("ab needs --base REV")
        print(f"machine: {machine()}\n\n== A/B against {args.base}, alternated ==")
        result = ab_bench.run(args.base, args.seeds or 10, stages=not args.no_stages)
        Path("bench/ab.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        return
    if args.sections == ["soak"]:  # on demand only: 20 minutes
        from bench import soak_bench

        print(f"machine: {machine()}\n\n== soak: {args.minutes:g} minutes, faults injected ==")
        result = soak_bench.run(args.minutes or 20.0)
        Path("bench/soak.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        return
    if args.sections == ["suite"]:  # on demand only: up to hours
        from bench import suite_bench

        seeds = args.seeds or 5
        unknown_envs = [e for e in args.envs or [] if e not in suite_bench.ENVS]
        if unknown_envs:
            p.error(f"suite: unknown env {unknown_envs[0]!r}; choose from "
                    f"{', '.join(suite_bench.ENVS)}")
        print(f"machine: {machine()}\n\n== suite: {seeds} seeds each, presets applied ==")
        result = suite_bench.run(seeds, args.envs)
        Path("bench/suite.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        return
    if args.sections in (["minatar"], ["atari"]):  # on demand only: up to an hour
        from bench import pixels_bench

        games = pixels_bench.MINATAR_GAMES if args.sections == ["minatar"] else \
            [("ALE/Pong-v5", args.minutes or 60.0)]
        if args.envs:
            games = [(e, args.minutes or m) for e, m in games if e in args.envs] or \
                [(e, args.minutes or 10.0) for e in args.envs]
        print(f"machine: {machine()}\n\n== {args.sections[0]}: training runs, presets "
              "applied ==")
        rows = pixels_bench.training(games, Path("bench/runs"), Path("assets"))
        Path(f"bench/{args.sections[0]}.json").write_text(
            json.dumps(rows, indent=2, default=str) + "\n")
        return
    unknown = [x for x in args.sections if x not in SECTIONS]
    if unknown:
        p.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    args.sections = args.sections or list(SECTIONS)
    print(f"machine: {machine()}\n")
    out = Path(args.out)
    try:  # sections run on their own update the saved file instead of replacing it
        results: dict = json.loads(out.read_text())
    except (OSError, ValueError):
        results = {}
    results.update(machine=machine(), time=time.strftime("%Y-%m-%d %H:%M:%S"))
    if "replay" in args.sections:
        from bench import replay_bench

        print("== replay memory (capacity 2^20, CartPole records, one core) ==")
        results["replay"] = replay_bench.run(quick=args.quick)
        print()
    if "learner" in args.sections:
        from bench import learner_bench

        print("== isolated learner (synthetic CartPole batches) ==")
        results["learner"] = learner_bench.run(quick=args.quick)
        print()
    if "stages" in args.sections:
        from bench import stages_bench

        print("== every stage against its limit ==")
        results["stages"] = stages_bench.run(quick=args.quick)
        print()
    if "e2e" in args.sections:
        from bench import e2e_bench

        seeds = args.seeds or 10
        print(f"== time to goal: CartPole-v1, default config, {seeds} seeds in a row ==")
        results["e2e"] = e2e_bench.run(seeds)
        print()
    if "ray" in args.sections:
        from bench import ray_bench

        seeds = args.seeds or 5
        print(f"== the Ray backend: {seeds} seeds beside the local one, scaling, cost ==")
        results["ray"] = ray_bench.run(seeds, quick=args.quick)
        print()
    if "dashboard" in args.sections:
        from bench import dashboard_bench

        print(f"== the dashboard in tmux ({dashboard_bench.COLS}x{dashboard_bench.ROWS}), "
              "training CartPole ==")
        results["dashboard"] = dashboard_bench.run(quick=args.quick)
        print()
    if "reliability" in args.sections:
        from bench import reliability_bench

        print("== faults injected (the reliability tests, run for their figures) ==")
        results["reliability"] = reliability_bench.run(quick=args.quick)
        print()
    if "pixels" in args.sections:
        from bench import pixels_bench

        print("== pixels: Atari and MinAtar throughput ==")
        results["pixels"] = pixels_bench.run(quick=args.quick)
        print()
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results saved to {args.out}")


if __name__ == "__main__":
    main()
