"""--no-ui: a live rich status line and log lines over the same Snapshots the dashboard renders,
then a final summary. Works in CI logs too (no live display when stdout is no terminal)."""

from __future__ import annotations

import math
import sys
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from d3q_core.run.control import RunControl
from d3q_core.run.signals import graceful_stop
from d3q_core.snapshot import LogLine, Snapshot
from d3q_tui.panels.format import goal_text


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def status_line(s: Snapshot) -> Text:
    last = s.evals[-1] if s.evals else None
    t = Text()
    t.append(f"{s.elapsed:6.1f}s ", style="bold")
    t.append(f"{s.phase:<15}", style="cyan")
    t.append(f" learner {s.learner.samples:>10,} samples ({s.learner.samples_per_s:,.0f}/s)")
    t.append(f"  env {s.env_steps:>9,} steps ({s.env_steps_per_s:,.0f}/s)")
    t.append(f"  replay {s.replay.size:,}")
    t.append(f"  eval {_fmt(last.mean if last else None)}", style="green")
    t.append(f" (best {_fmt(s.best_eval)}, {goal_text(s.goal)})")
    if s.paused:
        t.append("  PAUSED", style="bold yellow")
    if s.stall:
        t.append(f"  stalled: {s.stall}", style="bold red")
    return t


def summary_table(result: Any) -> Table:
    s = result.summary
    table = Table(title="d3q run summary", show_header=False, title_style="bold")
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # paths in full, folded, never cut
    rows = [
        ("solved", "yes" if s.get("solved") else "no"),
        ("stop reason", str(s.get("stop_reason"))),
        ("seconds to goal", _fmt(s.get("seconds_to_goal"))),
        ("learner samples at goal", _fmt(s.get("learner_samples_at_goal"), ",")),
        ("env steps at goal", _fmt(s.get("env_steps_at_goal"), ",")),
        ("best eval mean", _fmt(s.get("best_eval_mean"))),
        ("confirmed eval mean", _fmt(s.get("confirmed_eval_mean"))),
        ("wall seconds", _fmt(s.get("wall_seconds"))),
        ("run directory", str(s.get("run_dir", ""))),
    ]
    if result.error:
        rows.append(("error", result.error))
    for k, v in rows:
        table.add_row(k, Text(v))  # a value as written, never parsed as markup
    return table


def log_text(line: LogLine) -> Text:
    """A log line as it is: paths and messages are never parsed as markup (a run directory
    named `a[/]b` is a name, not a closing tag)."""
    style = {"warning": "yellow", "error": "bold red"}.get(line.level, "")
    t = Text(f"{line.elapsed:7.1f}s ", style="dim")
    t.append(line.text, style=style)
    return t


class HeadlessPrinter:
    """Receives Snapshots from the orchestrator and prints new log lines and a status line."""

    def __init__(self, console: Console, live: Live | None):
        self.console, self.live = console, live
        self.last_seq = 0
        self.last_plain = 0.0

    def __call__(self, s: Snapshot) -> None:
        for line in s.log:
            if line.seq > self.last_seq:
                self.last_seq = line.seq
                self.console.print(log_text(line), highlight=False)
        if self.live is not None:
            self.live.update(status_line(s))
        elif s.elapsed - self.last_plain >= 5.0:
            self.last_plain = s.elapsed
            self.console.print(status_line(s), highlight=False)


def run_headless(orch: RunControl, console: Console | None = None) -> int:
    """Run to the end. SIGINT, SIGTERM or SIGHUP (to this process alone or to its group)
    stops gracefully; a second one stops at once."""
    console = console or Console(highlight=False)
    live = Live(console=console, refresh_per_second=4, transient=True) if console.is_terminal \
        else None
    printer = HeadlessPrinter(console, live)
    with graceful_stop(orch, restore=False):
        if live is not None:
            with live:
                result = orch.run(printer)
        else:
            result = orch.run(printer)
    result.summary["run_dir"] = str(orch.run_dir)
    console.print(summary_table(result))
    sys.stdout.flush()
    return result.exit_code
