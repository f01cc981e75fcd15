"""`d3q-tui [COMMAND] ...`: the subcommand (train by default) run, and every input error turned
into one line on stderr naming the culprit, with exit code 2, before any process starts."""

from __future__ import annotations

import sys
import time

from d3q_core.exitcodes import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from d3q_tui.commands.parsing import OneLineParser, UsageError

__all__ = ["OneLineParser", "UsageError", "main"]


def main(argv: list[str] | None = None) -> int:
    started_at = _process_start_time()
    argv = sys.argv[1:] if argv is None else list(argv)
    from d3q_tui.commands import train
    from d3q_tui.commands.tools import COMMANDS

    name = argv[0] if argv and argv[0] in (*COMMANDS, "train") else "train"
    rest = argv[1:] if argv and argv[0] == name else argv
    try:
        if name == "train":
            return train.main(rest, started_at)
        return COMMANDS[name](rest)
    except KeyboardInterrupt:  # eval/export/runs: nothing to save, nothing left behind
        print("d3q-tui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every input error becomes one line
        if not _is_input_error(exc):
            raise
        message = str(exc)
        if isinstance(exc, OSError) and exc.filename:
            message = f"{exc.filename}: {exc.strerror or exc}"
        prog = "d3q-tui" if name == "train" else f"d3q-tui {name}"
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _is_input_error(exc: BaseException) -> bool:
    from d3q_core.config import ConfigError
    from d3q_core.envs import EnvError
    from d3q_core.faults import FaultSpecError
    from d3q_core.storage.checkpoint import CheckpointError
    from d3q_core.storage.rundir import RunDirError
    from d3q_core.tools import ToolError

    return isinstance(exc, (UsageError, ConfigError, EnvError, RunDirError, CheckpointError,
                            FaultSpecError, ToolError, OSError))


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
