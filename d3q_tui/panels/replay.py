"""Replay: fill gauge, insert/sample rates, the priority histogram over log-spaced bins."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from d3q_core.snapshot import ReplayStats
from d3q_tui.panels.format import SPARK, bar, count, num, rate


def histogram_rows(counts: tuple[int, ...], edges: tuple[float, ...], height: int,
                   width: int) -> list[Text]:
    """Vertical bars, one column group per bin, scaled to the tallest bin."""
    if not counts or max(counts) == 0:
        return [Text("no priorities yet", style="dim italic")]
    n = len(counts)
    col = max(1, width // n)
    peak = max(counts)
    levels = [c / peak * height for c in counts]
    rows = []
    for r in range(height, 0, -1):
        t = Text()
        for i, lv in enumerate(levels):
            fill = lv - (r - 1)
            ch = "█" if fill >= 1 else (SPARK[int(fill * (len(SPARK) - 1))] if fill > 0 else " ")
            style = "magenta" if i >= n * 2 // 3 else ("cyan" if i >= n // 3 else "blue")
            t.append(ch * col, style=style)
        rows.append(t)
    axis = Text(f"{edges[0]:.2g}", style="dim")
    right = f"{edges[-1]:.2g}"
    axis.append(" " * max(1, n * col - len(axis) - len(right)) + right, style="dim")
    rows.append(axis)
    return rows


class ReplayPanel(Static):
    DEFAULT_CSS = """
    ReplayPanel { border: round $accent; border-title-color: $accent; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.border_title = "Replay"

    def show(self, r: ReplayStats) -> None:
        width = max(10, self.size.width - 4)
        fill = r.size / r.capacity if r.capacity else 0.0
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True)
        head = Text()
        head.append("fill ", style="bold")
        head.append_text(bar(fill, max(6, width - 30), "cyan"))
        head.append(f" {count(r.size)}/{count(r.capacity)}")
        grid.add_row(head)
        line = Text()
        line.append("insert ", style="bold")
        line.append(rate(r.insert_rate), style="green")
        line.append("  sample ", style="bold")
        line.append(rate(r.sample_rate), style="magenta")
        line.append(f"  ratio {num(r.sample_rate / r.insert_rate if r.insert_rate else None)}")
        grid.add_row(line)
        line = Text()
        line.append("priority ", style="bold")
        line.append(f"max {num(r.max_priority, '.3g')}  mean {num(r.mean_priority, '.3g')}  ")
        line.append(f"beta {num(r.beta, '.2f')}", style="yellow")
        if r.dropped:
            line.append(f"  dropped {r.dropped}", style="bold red")
        grid.add_row(line)
        height = max(2, self.size.height - 6)
        for row in histogram_rows(r.histogram, r.bin_edges, height, width):
            grid.add_row(row)
        self.update(grid)
