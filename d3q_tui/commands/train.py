"""`d3q-tui [train]`: arguments -> Config -> the dashboard or the headless run."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from d3q_tui.commands.parsing import EXIT_CODES, OneLineParser

DESCRIPTION = """\
Distributed deep Q-learning (Ape-X style) with a live terminal dashboard.

commands (train is the default; each has its own --help):
  train     train a policy: the dashboard, or headless with --no-ui
  preview   play a run's newest checkpoint in a window, reloading newer ones
  eval      greedy episodes of a saved policy: mean, std, min, max; --record for videos
  export    the trained network as a .keras file or a TensorFlow SavedModel
  runs      the runs under a directory, newest first"""

EPILOG = f"""\
{textwrap.fill(EXIT_CODES + ".", 92)}

dashboard keys: p preview window, s checkpoint now, space pause/resume, t TensorBoard,
  ? help, q quit (a final checkpoint, then exit)

examples:
  d3q-tui                                   CartPole on the dashboard
  d3q-tui --no-ui --env Acrobot-v1 --seed 3 headless, another env (its preset applies)
  d3q-tui --env my_pkg.envs:MyEnv-v0 --set env.kwargs.size=8
  d3q-tui --set learner.learning_rate=5e-4 --print-config
  d3q-tui --no-ui --backend ray --address local   the roles as actors on Ray
  d3q-tui --resume runs/20261204-101500-CartPole-v1 --set stop.max_seconds=1200
  d3q-tui eval runs/20261204-101500-CartPole-v1 --episodes 100 --record videos
  d3q-tui export runs/20261204-101500-CartPole-v1 --format savedmodel
  d3q-tui runs"""


def build_parser(prog: str = "d3q-tui") -> argparse.ArgumentParser:
    from d3q_core import __version__

    p = OneLineParser(prog=prog, description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--no-ui", action="store_true", help="run headless (servers, CI, scripts)")
    p.add_argument("--env", metavar="ID", help="gymnasium env id, or module:ID (env.id)")
    p.add_argument("--config", metavar="FILE", help="TOML file of settings")
    p.add_argument("--set", dest="overrides", metavar="SECTION.KEY=VALUE", action="append",
                   default=[], help="override one setting (repeatable)")
    p.add_argument("--seed", type=int, help="run.seed")
    p.add_argument("--preset", metavar="NAME",
                   help="run.preset: auto (the env's own, the default), none, or a preset name")
    p.add_argument("--backend", choices=("local", "ray"),
                   help="cluster.backend: processes on this machine (the default) or Ray actors")
    p.add_argument("--address", metavar="local|auto|HOST:PORT",
                   help="cluster.address (ray): a private instance, this machine's cluster, "
                        "or a cluster's head")
    p.add_argument("--run-dir", metavar="DIR", help="run directory (default runs/<time>-<env>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved settings (defaults, preset, file, overrides) as "
                        "TOML and exit")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def config_from_args(args: argparse.Namespace):
    from d3q_core.config import RESUME_KEYS, RESUME_RULE, ConfigError, build_config

    overrides = list(args.overrides)
    if args.env:
        overrides.insert(0, f"env.id={args.env}")
    if args.seed is not None:
        overrides.insert(0, f"run.seed={args.seed}")
    if args.preset:
        overrides.insert(0, f"run.preset={args.preset}")
    if args.address:
        overrides.insert(0, f"cluster.address={args.address}")
    if args.backend:
        overrides.insert(0, f"cluster.backend={args.backend}")
    if args.resume:
        from d3q_core.storage.rundir import RunDir

        rundir = RunDir.open_existing(Path(args.resume))
        if args.config or args.env or args.seed is not None or args.preset:
            raise ConfigError("--resume takes its settings from the run; only --set stop.* "
                              "and cluster.* (--backend, --address) overrides are allowed")
        for o in overrides:
            if o.split("=", 1)[0].strip() not in RESUME_KEYS:
                raise ConfigError(f"--set {o}: {RESUME_RULE}")
        return build_config(None, overrides, base=rundir.read_config())
    return build_config(args.config, overrides)


def main(argv: list[str], started_at: float) -> int:
    """Parses, builds everything that can fail on bad input, then runs. Input errors
    propagate to the caller, which prints them as one line."""
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    if args.print_config:
        from d3q_core.config import to_toml

        sys.stdout.write(to_toml(config))
        return 0
    from d3q_core.run.orchestrator import Orchestrator

    orch = Orchestrator(config, run_dir=Path(args.run_dir) if args.run_dir else None,
                        resume=Path(args.resume) if args.resume else None,
                        started_at=started_at)
    headless = args.no_ui or not sys.stdout.isatty()
    if headless:
        if not args.no_ui:
            print("d3q-tui: stdout is not a terminal; running headless (--no-ui)",
                  file=sys.stderr)
        from d3q_tui.headless import run_headless

        return run_headless(orch)
    from d3q_tui.app import run_tui

    return run_tui(orch)
