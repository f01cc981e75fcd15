"""Processes: a row per d3q process with its role, pid, state, rate, CPU, memory, restarts."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from d3q_core.snapshot import ProcessStats
from d3q_tui.panels.format import load_style, nbytes, rate

STATE_STYLE = {"running": "green", "starting": "yellow", "restarting": "bold yellow",
               "paused": "yellow", "exited": "dim", "failed": "bold red"}


class ProcessesPanel(Static):
    DEFAULT_CSS = """
    ProcessesPanel { border: round $accent; border-title-color: $accent; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.border_title = "Processes"

    def show(self, rows: tuple[ProcessStats, ...]) -> None:
        wide = self.size.width >= 60  # below that, keep what matters: role, state, rate, cpu
        t = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
        t.add_column("role", no_wrap=True, ratio=1, overflow="ellipsis")
        if wide:
            t.add_column("pid", no_wrap=True, justify="right")
        t.add_column("state", no_wrap=True)
        t.add_column("rate", no_wrap=True, justify="right")
        t.add_column("cpu", no_wrap=True, justify="right")
        if wide:
            t.add_column("mem", no_wrap=True, justify="right")
            t.add_column("rst", no_wrap=True, justify="right")
        total_rss = 0
        for p in rows:
            total_rss += p.rss_bytes
            cells: list = [Text(p.name if wide else p.name.replace("simulator", "sim"),
                                style="bold")]
            if wide:
                cells.append(str(p.pid or "-"))
            cells += [
                Text(p.state, style=STATE_STYLE.get(p.state, "")),
                Text(rate(p.rate) if p.rate_unit else "", style="cyan"),
                Text(f"{p.cpu_percent:.0f}%", style=load_style(p.cpu_percent)),
            ]
            if wide:
                cells += [nbytes(p.rss_bytes),
                          Text(str(p.restarts), style="bold red" if p.restarts else "dim")]
            t.add_row(*cells)
        self.border_subtitle = f"{len(rows)} processes, {nbytes(total_rss)} RSS"
        self.update(t)
