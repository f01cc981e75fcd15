"""Devices: a load bar per CPU core, GPU utilization/memory/temperature/power via NVML."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from d3q_core.snapshot import DeviceStats
from d3q_tui.panels.format import bar, load_style, nbytes


class DevicesPanel(Static):
    DEFAULT_CSS = """
    DevicesPanel { border: round $accent; border-title-color: $accent; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.border_title = "Devices"

    def show(self, d: DeviceStats) -> None:
        width = max(8, self.size.width - 16)
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(width=6, no_wrap=True)
        grid.add_column(ratio=1, no_wrap=True)
        grid.add_column(width=5, justify="right", no_wrap=True)
        for i, pct in enumerate(d.cpu_percent):
            grid.add_row(Text(f"cpu{i}", style="bold"), bar(pct / 100, width, load_style(pct)),
                         Text(f"{pct:3.0f}%", style=load_style(pct)))
        if d.gpus:
            for g in d.gpus:
                grid.add_row(Text(f"gpu{g.index}", style="bold magenta"),
                             bar(g.util_percent / 100, width, load_style(g.util_percent)),
                             Text(f"{g.util_percent:3.0f}%"))
                mem = g.mem_used / g.mem_total if g.mem_total else 0.0
                extra = []
                if g.temperature_c is not None:
                    extra.append(f"{g.temperature_c:.0f}°C")
                if g.power_w is not None:
                    extra.append(f"{g.power_w:.0f} W")
                grid.add_row(Text(" mem", style="dim"), bar(mem, width, "cyan"),
                             Text(f"{mem * 100:3.0f}%"))
                grid.add_row("", Text(f"{g.name}  {nbytes(g.mem_used)}/{nbytes(g.mem_total)}  "
                                      + "  ".join(extra), style="dim"), "")
        else:
            grid.add_row(Text("gpu", style="dim"), Text(d.gpu_note, style="dim italic"), "")
        learner = ", ".join(d.learner_devices) if d.learner_devices else "starting…"
        grid.add_row(Text("learn", style="bold"), Text(f"replicas on {learner}",
                                                       style="italic"), "")
        self.update(grid)
