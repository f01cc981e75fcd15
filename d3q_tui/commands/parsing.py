"""What every subcommand's parser shares: one-line errors, and the help's common parts."""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_CODES = ("exit codes: 0 goal reached, 1 a limit reached without the goal, 2 bad input, "
              "3 the run failed, 130 interrupted (SIGINT, SIGTERM or SIGHUP: a final "
              "checkpoint, then every process exits; a second signal stops at once)")


class UsageError(Exception):
    """Bad arguments; the message is one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus error over two lines; d3q promises one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def add_checkpoint_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default="auto", metavar="auto|best|newest|FILE",
                   help="which parameters: best (confirmed at the goal), newest, a file, or "
                        "auto (best if the run reached its goal, else newest; the default)")
