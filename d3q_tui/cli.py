"""`d3q-tui`: arguments -> Config -> the dashboard, the headless run, or the preview window.

Bad input (unknown env, invalid settings, unreadable files, bad run directories) ends with one
line on stderr naming the culprit and exit code 2, before any process starts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NoReturn

from d3q_core.exitcodes import EXIT_BAD_INPUT


class UsageError(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus error over two lines; d3q promises one."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="d3q-tui",
        description="Distributed deep Q-learning (Ape-X style) with a live terminal dashboard.",
        epilog="exit codes: 0 goal reached, 1 a limit without the goal, 2 bad input, "
               "3 the run failed, 130 interrupted (SIGINT, SIGTERM or SIGHUP: a final "
               "checkpoint, then every process exits; a second signal stops at once). "
               "Also: d3q-tui preview RUN_DIR.",
    )
    p.add_argument("--no-ui", action="store_true", help="run headless (servers, CI, scripts)")
    p.add_argument("--env", metavar="ID", help="gymnasium env id (env.id)")
    p.add_argument("--config", metavar="FILE", help="TOML file of settings")
    p.add_argument("--set", dest="overrides", metavar="SECTION.KEY=VALUE", action="append",
                   default=[], help="override one setting (repeatable)")
    p.add_argument("--seed", type=int, help="run.seed")
    p.add_argument("--run-dir", metavar="DIR", help="run directory (default runs/<time>-<env>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    return p


def build_preview_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="d3q-tui preview",
                      description="Play the newest checkpoint of a run in a window.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--grid", default="2x2", help="tiles, COLSxROWS (default 2x2)")
    return p


def _config_from_args(args: argparse.Namespace):
    from d3q_core.config import STOP_KEYS, ConfigError, build_config

    overrides = list(args.overrides)
    if args.env:
        overrides.insert(0, f"env.id={args.env}")
    if args.seed is not None:
        overrides.insert(0, f"run.seed={args.seed}")
    if args.resume:
        from d3q_core.storage.rundir import RunDir

        rundir = RunDir.open_existing(Path(args.resume))
        if args.config or args.env or args.seed is not None:
            raise ConfigError("--resume takes its settings from the run; only --set stop.* "
                              "overrides are allowed")
        for o in overrides:
            if o.split("=", 1)[0].strip() not in STOP_KEYS:
                raise ConfigError(f"--set {o}: with --resume only stop.* settings may change")
        return build_config(None, overrides, base=rundir.read_config())
    return build_config(args.config, overrides)


def _preview(argv: list[str]) -> int:
    args = build_preview_parser().parse_args(argv)
    try:
        cols, rows = (int(x) for x in args.grid.lower().split("x"))
        if cols < 1 or rows < 1:
            raise ValueError
    except ValueError:
        raise UsageError(f"--grid {args.grid!r}: expected COLSxROWS, e.g. 2x2") from None
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    from d3q_tui.preview import preview_main

    return preview_main(run_dir, grid=(cols, rows))


def main(argv: list[str] | None = None) -> int:
    started_at = _process_start_time()
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["preview"]:
            return _preview(argv[1:])
        args = build_parser().parse_args(argv)
        config = _config_from_args(args)
        from d3q_core.run.orchestrator import Orchestrator

        orch = Orchestrator(config, run_dir=Path(args.run_dir) if args.run_dir else None,
                            resume=Path(args.resume) if args.resume else None,
                            started_at=started_at)
    except Exception as exc:  # noqa: BLE001 - every input error becomes one line
        if not _is_input_error(exc):
            raise
        message = str(exc)
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
            message = f"{exc.filename}: {exc.strerror or exc}"
        print(f"d3q-tui: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    headless = args.no_ui or not sys.stdout.isatty()
    if headless:
        if not args.no_ui:
            print("d3q-tui: stdout is not a terminal; running headless (--no-ui)",
                  file=sys.stderr)
        from d3q_tui.headless import run_headless

        return run_headless(orch)
    from d3q_tui.app import run_tui

    return run_tui(orch)


def _is_input_error(exc: BaseException) -> bool:
    from d3q_core.config import ConfigError
    from d3q_core.envs import EnvError
    from d3q_core.faults import FaultSpecError
    from d3q_core.storage.checkpoint import CheckpointError
    from d3q_core.storage.rundir import RunDirError

    return isinstance(exc, (UsageError, ConfigError, EnvError, RunDirError, CheckpointError,
                            FaultSpecError, OSError))


def _process_start_time() -> float:
    """Seconds are counted from the command's start, interpreter start-up included."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001
        return time.time()


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
