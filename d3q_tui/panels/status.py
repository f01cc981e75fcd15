"""The status bar: env, run directory, elapsed, phase, goal, best evaluation."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from d3q_core import snapshot as snap
from d3q_core.snapshot import Snapshot
from d3q_tui.panels.format import elapsed, num

PHASE_STYLE = {
    snap.PHASE_STARTING: "bold white on grey30",
    snap.PHASE_FILLING: "bold black on yellow",
    snap.PHASE_TRAINING: "bold white on dark_green",
    snap.PHASE_CONFIRMING: "bold black on cyan",
    snap.PHASE_GOAL: "bold black on bright_green",
    snap.PHASE_STOPPING: "bold white on dark_orange3",
    snap.PHASE_STOPPED: "bold white on red3",
}


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $boost; padding: 0 1; }
    """

    def show(self, s: Snapshot, note: str = "") -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" d3q ", style="bold black on magenta")
        t.append(f" {s.env_id} ", style="bold")
        phase = s.phase + (f": {s.stop_reason}" if s.stop_reason and s.phase in
                           (snap.PHASE_STOPPED, snap.PHASE_STOPPING) else "")
        t.append(f" {phase} ", style=PHASE_STYLE.get(s.phase, "bold"))
        if s.paused:
            t.append(" PAUSED ", style="bold black on yellow")
        t.append(f"  ⏱ {elapsed(s.elapsed)}", style="bold")
        t.append(f"  goal {s.goal:g}")
        t.append(f"  best {num(s.best_eval)}", style="bold green")
        if s.confirmed_eval is not None:
            t.append(f"  confirmed {num(s.confirmed_eval)}", style="bold cyan")
        if s.stall:
            t.append(f"  ⚠ stalled: {s.stall}", style="bold red")
        if s.tensorboard_url:
            t.append(f"  TB {s.tensorboard_url}", style="underline blue")
        if note:
            t.append(f"  {note}", style="italic yellow")
        t.append(f"  {s.run_dir}", style="dim")
        self.update(t)
