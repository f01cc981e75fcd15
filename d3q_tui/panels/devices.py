"""Devices: a gradient load bar and a short history per CPU core, GPU utilization, memory,
temperature and power, and where the learner's replicas live."""

from __future__ import annotations

import math
from collections import deque

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive

from d3q_core.snapshot import DeviceStats
from d3q_tui.panels.base import Panel
from d3q_tui.panels.format import COOL, gauge, nbytes, shade, sparkline

HISTORY = 60


def short_device(name: str) -> str:
    """'/job:localhost/replica:0/task:0/device:GPU:1' -> 'gpu:1'."""
    tail = name.rsplit("device:", 1)[-1].strip("/")
    return tail.lower()


class DevicesPanel(Panel):
    PANEL_TITLE = "Devices"
    DEFAULT_CSS = """
    DevicesPanel { border: round #2e9e44; border-title-color: #5fd75f; height: auto; }
    """

    devices: reactive[DeviceStats | None] = reactive(None)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.history: list[deque[float]] = []
        self.tag, self.spark, self.bar = 4, 0, 10
        self._shape: tuple = ()

    def watch_devices(self, d: DeviceStats | None) -> None:
        if d is None:
            return
        shape = (len(d.cpu_percent), len(d.gpus),
                 tuple((len(n.cpu_percent), len(n.gpus)) for n in d.nodes))
        if shape != self._shape:  # a new height: lay out again (not on every Snapshot)
            self._shape = shape
            self.refresh(layout=True)
        if len(self.history) != len(d.cpu_percent):
            self.history = [deque(maxlen=HISTORY) for _ in d.cpu_percent]
        for h, pct in zip(self.history, d.cpu_percent, strict=True):
            h.append(pct)
        names = sorted({g.name for g in d.gpus})
        gpus = ", ".join(f"{n} ×{sum(g.name == n for g in d.gpus)}" for n in names)
        self.border_subtitle = f"{gpus} · {d.gpu_note}" if gpus else ""
        cores = len(d.cpu_percent) + sum(len(n.cpu_percent) for n in d.nodes)
        where = f" · {len(d.nodes) + 1} nodes" if d.nodes else ""
        self.border_title = f"Devices · {cores} cores{where}"

    def render(self) -> Group:
        d = self.devices
        if d is None:
            return Group(Text("sampling…", style="dim italic"))
        width = self.content_width()
        n = len(d.cpu_percent)
        self.tag = max(len(f"cpu{max(0, n - 1)}"), len(f"gpu{max(0, len(d.gpus) - 1)}"))
        # one column of cores: label, gauge, percent, history; the GPU gauges line up with it
        self.spark = max(0, (width - self.tag - 7) * 2 // 5) if width >= 40 else 0
        self.bar = max(4, width - self.tag - 6 - (self.spark + 1 if self.spark else 0))
        lines = [self._node_line(d.node, width)] if d.nodes else []
        lines += self._cpu_lines(d.cpu_percent, width, self.history)
        lines += self._gpu_lines(d.gpus, d.gpu_note, width)
        for node in d.nodes:  # a cluster: the other machines that host roles, by name
            lines.append(self._node_line(node.name, width))
            lines += self._cpu_lines(node.cpu_percent, width, [])
            lines += self._gpu_lines(node.gpus, node.gpu_note, width)
        lines.append(self._learner_line(d))
        return Group(*lines)

    @staticmethod
    def _node_line(name: str, width: int) -> Text:
        t = Text(no_wrap=True)
        t.append(f"── {name} ", style="bold #5fd75f")
        t.append("─" * max(0, width - len(name) - 4), style="#2e9e44")
        return t

    def _cpu_lines(self, cpus: tuple[float, ...], width: int,
                   history: list[deque[float]]) -> list[Text]:
        n = len(cpus)
        if n == 0:
            return [Text("cpu  no reading yet", style="dim")]
        cols = 1 if n <= 4 else 2 if n <= 16 or width < 80 else 4
        rows = math.ceil(n / cols)
        cell = (width - 2 * (cols - 1)) // cols
        tag = self.tag
        spark = self.spark if cols == 1 else 0
        bar = self.bar if cols == 1 else max(3, cell - tag - 6)
        lines = []
        for r in range(rows):
            t = Text(no_wrap=True)
            for c in range(cols):
                i = r + c * rows
                if i >= n:
                    break
                pct = cpus[i]
                if c:
                    t.append("  ")
                t.append(f"cpu{i}".ljust(tag) + " ", style="bold")
                t.append_text(gauge(pct / 100, bar))
                t.append(f"{pct:4.0f}%", style=shade(pct / 100))
                if spark and i < len(history):
                    t.append(" ")
                    t.append_text(sparkline(history[i], spark, hi=100.0))
            lines.append(t)
        return lines

    def _gpu_lines(self, gpus: tuple, note: str, width: int) -> list[Text]:
        if not gpus:
            t = Text("gpu  ", style="bold dim", no_wrap=True, overflow="ellipsis")
            t.append(note or "no GPU", style="dim italic")
            return [t]
        lines = []
        bar = self.bar if self.spark >= 10 else max(4, width - self.tag - 17)
        for g in gpus:
            t = Text(no_wrap=True, overflow="ellipsis")
            t.append(f"gpu{g.index}".ljust(self.tag) + " ", style="bold magenta")
            t.append_text(gauge(g.util_percent / 100, bar))
            t.append(f"{g.util_percent:4.0f}%", style=shade(g.util_percent / 100))
            t.append(" ")
            if g.temperature_c is not None:
                hot = "bold red" if g.temperature_c >= 85 else "yellow" \
                    if g.temperature_c >= 75 else ""
                t.append(f" {g.temperature_c:.0f}°C", style=hot)
            if g.power_w is not None:
                t.append(f"  {g.power_w:.0f}W")
            m = Text(no_wrap=True, overflow="ellipsis")
            frac = g.mem_used / g.mem_total if g.mem_total else 0.0
            m.append("mem".rjust(self.tag) + " ", style="dim")
            m.append_text(gauge(frac, bar, COOL))
            m.append(f" {nbytes(g.mem_used)}/{nbytes(g.mem_total)}", style="cyan")
            lines += [t, m]
        return lines

    @staticmethod
    def _learner_line(d: DeviceStats) -> Text:
        t = Text("learner ", style="bold", no_wrap=True, overflow="ellipsis")
        if not d.learner_devices:
            t.append("starting…", style="dim italic")
            return t
        t.append(f"{len(d.learner_devices)} replica{'s' * (len(d.learner_devices) > 1)} on ",
                 style="dim")
        for i, name in enumerate(d.learner_devices):
            if i:
                t.append(", ", style="dim")
            t.append(short_device(name), style="bold magenta" if "gpu" in name.lower()
                     else "bold green")
            if i < len(d.learner_device_memory) and d.learner_device_memory[i]:
                t.append(f" {nbytes(d.learner_device_memory[i])}", style="cyan")
        return t
