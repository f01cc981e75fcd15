"""The status bar: env, phase, elapsed, goal and best evaluation, paused and stall warnings,
TensorBoard's address and the run directory, most important first."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from d3q_core import snapshot as snap
from d3q_core.snapshot import Snapshot
from d3q_tui.panels.format import elapsed, goal_text, num

PHASE_STYLE = {
    snap.PHASE_STARTING: "bold #e0e0e0 on #4b5263",
    snap.PHASE_FILLING: "bold #1e1e1e on #e5c07b",
    snap.PHASE_TRAINING: "bold #1e1e1e on #98c379",
    snap.PHASE_CONFIRMING: "bold #1e1e1e on #56b6c2",
    snap.PHASE_GOAL: "bold #1e1e1e on #5fff87",
    snap.PHASE_STOPPING: "bold #1e1e1e on #d19a66",
    snap.PHASE_STOPPED: "bold #ffffff on #be5046",
}
SEP = ("  ", "")


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None)
    note: reactive[str] = reactive("")  # "stopping…", "finished: press q to leave"
    tensorboard_url: reactive[str | None] = reactive(None)

    def render(self) -> Text:
        s = self.snapshot
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" d3q ", style="bold #1e1e1e on #c678dd")
        if s is None:
            t.append("  starting…", style="dim")
            return t
        t.append(f" {s.env_id} ", style="bold")
        phase = s.phase
        if s.stop_reason and s.phase in (snap.PHASE_STOPPING, snap.PHASE_STOPPED):
            phase += f": {s.stop_reason}"
        t.append(f" {phase} ", style=PHASE_STYLE.get(s.phase, "bold reverse"))
        if s.paused:
            t.append(" ")
            t.append(" PAUSED ", style="bold #1e1e1e on #e5c07b blink")
        if s.stall:
            t.append(" ")
            t.append(f" STALLED: {s.stall} ", style="bold #ffffff on #be5046")
        if self.note:
            t.append(" ")
            t.append(f" {self.note} ", style="bold #1e1e1e on #d19a66")
        t.append(*SEP)
        t.append(elapsed(s.elapsed), style="bold")
        goal = goal_text(s.goal).split(" ", 1)
        t.append(f"  {goal[0]} ", style="dim")
        t.append(goal[1])
        t.append("  best ", style="dim")
        reached = s.best_eval is not None and s.best_eval >= s.goal
        t.append(num(s.best_eval), style="bold green" if reached else "bold")
        if s.confirmed_eval is not None:
            t.append("  confirmed ", style="dim")
            t.append(num(s.confirmed_eval), style="bold cyan")
        url = self.tensorboard_url or s.tensorboard_url
        if url:
            t.append("  TensorBoard ", style="dim")
            t.append(url, style="underline #61afef")
        room = self.size.width - t.cell_len - 2
        if room >= 12:
            path = s.run_dir if len(s.run_dir) <= room else "…" + s.run_dir[-(room - 1):]
            t.append(" " * (room - len(path) + 1) + path + " ", style="dim")
        return t
