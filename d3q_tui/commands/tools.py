"""`d3q-tui preview | eval | export | runs`: what is done with a run once it exists."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from d3q_tui.commands.parsing import OneLineParser, UsageError, add_checkpoint_arg


def _run_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise UsageError(f"{path}: no such run directory")
    return path


# --- preview --------------------------------------------------------------------------------

def preview_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="d3q-tui preview",
                      description="Play the newest checkpoint of a run in a window (reloading "
                                  "newer ones while the run goes on).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--grid", default="2x2", help="tiles, COLSxROWS (default 2x2)")
    return p


def preview(argv: list[str]) -> int:
    args = preview_parser().parse_args(argv)
    try:
        cols, rows = (int(x) for x in args.grid.lower().split("x"))
        if cols < 1 or rows < 1:
            raise ValueError
    except ValueError:
        raise UsageError(f"--grid {args.grid!r}: expected COLSxROWS, e.g. 2x2") from None
    run_dir = _run_dir(args.run_dir)
    from d3q_tui.preview import preview_main

    return preview_main(run_dir, grid=(cols, rows))


# --- eval -----------------------------------------------------------------------------------

def eval_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="d3q-tui eval",
                      description="Greedy episodes of a run's saved policy, headless: prints "
                                  "the return's mean, std, min and max and writes them to "
                                  "RUN_DIR/eval-<time>.json.",
                      epilog="example: d3q-tui eval runs/X --episodes 100 --record videos")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_checkpoint_arg(p)
    p.add_argument("--episodes", type=int, default=100, metavar="N",
                   help="greedy episodes (default 100)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="episode i is seeded S + i (default 0)")
    p.add_argument("--record", metavar="DIR",
                   help="write videos of the first episodes into DIR")
    p.add_argument("--record-episodes", type=int, default=3, metavar="K",
                   help="how many episodes --record writes (default 3)")
    p.add_argument("--video", choices=("mp4", "gif"), default="mp4",
                   help="video format for --record (default mp4)")
    return p


def evaluate(argv: list[str]) -> int:
    args = eval_parser().parse_args(argv)
    run_dir = _run_dir(args.run_dir)
    from d3q_core.tools.evaluate import evaluate_run

    report = evaluate_run(run_dir, args.checkpoint, args.episodes, args.seed,
                          record=args.record, record_episodes=args.record_episodes,
                          video_format=args.video)
    print(f"{report.checkpoint}: {report.line()} ({report.seconds:.1f}s)")
    for path, ret in zip(report.videos, report.video_returns, strict=True):
        print(f"video {path} (return {ret:g})")
    print(f"wrote {report.path}")
    return 0


# --- export ---------------------------------------------------------------------------------

def export_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="d3q-tui export",
                      description="The trained Q-network in a standard format: a .keras file "
                                  "(keras.saving.load_model) or a TensorFlow SavedModel with a "
                                  "serving signature from observations to Q-values.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_checkpoint_arg(p)
    p.add_argument("--format", required=True, metavar="keras|savedmodel", dest="fmt")
    p.add_argument("--out", metavar="PATH",
                   help="destination (default RUN_DIR/export/<checkpoint>.keras or "
                        "<checkpoint>-savedmodel)")
    return p


def export(argv: list[str]) -> int:
    args = export_parser().parse_args(argv)
    run_dir = _run_dir(args.run_dir)
    from d3q_core.tools.export import FORMATS, export_policy

    if args.fmt not in FORMATS:  # before TensorFlow loads: a typo costs no seconds
        raise UsageError(f"--format {args.fmt!r}: must be one of {', '.join(FORMATS)}")
    path = export_policy(run_dir, args.fmt, args.checkpoint, args.out)
    print(f"wrote {path}")
    return 0


# --- runs -----------------------------------------------------------------------------------

def runs_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="d3q-tui runs",
                      description="The runs under DIR (default runs), newest first: when, "
                                  "env, status, time to goal, best and confirmed score.")
    p.add_argument("root", metavar="DIR", nargs="?", default="runs")
    return p


def _num(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def runs(argv: list[str]) -> int:
    args = runs_parser().parse_args(argv)
    from d3q_core.tools.runs import list_runs

    rows = list_runs(args.root)
    if not rows:
        print(f"no runs under {args.root}")
        return 0
    # piped: one row a line, paths whole (a terminal folds them to its width)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 10_000)
    table = Table(box=None, pad_edge=False)
    for name, justify in (("started", "left"), ("env", "left"), ("status", "left"),
                          ("to goal", "right"), ("best", "right"), ("confirmed", "right"),
                          ("path", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for r in rows:
        table.add_row(r.started_text, Text(r.env_id), r.status,
                      _num(r.seconds_to_goal, ".1f") + ("s" if r.seconds_to_goal else ""),
                      _num(r.best, ".1f"), _num(r.confirmed, ".1f"), Text(r.path))
    console.print(table)
    return 0


COMMANDS = {"preview": preview, "eval": evaluate, "export": export, "runs": runs}
