"""Replay: fill gauge, insert and sample rates with their recent history, and the priority
histogram over the memory's log-spaced bins."""

from __future__ import annotations

import math
from collections import deque

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive

from d3q_core.snapshot import ReplayStats
from d3q_tui.panels.base import Panel
from d3q_tui.panels.format import (
    COOL,
    SPARK,
    WARM,
    Runs,
    gauge,
    nbytes,
    num,
    rate,
    shade,
    si,
    sparkline,
)

HISTORY = 40


def _tick(x: float) -> str:
    return f"{x:.2g}" if 1e-3 <= x < 1e4 else f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")


def histogram_rows(counts: tuple[int, ...], edges: tuple[float, ...], height: int,
                   width: int) -> list[Text]:
    """Vertical bars, one per bin, with eighth-block tops, a count axis and decade ticks."""
    if not counts or max(counts) <= 0:
        return [Text("no priorities yet", style="dim italic")]
    peak = max(counts)
    axis_w = len(si(peak)) + 1
    n = len(counts)
    span = max(n, width - axis_w)
    bounds = [round(i * span / n) for i in range(n + 1)]  # bins stretch to the full width
    gap = 1 if span // n >= 3 else 0
    height = max(1, height)
    rows = []
    for r in range(height, 0, -1):
        t = Runs()
        t.add((si(peak) if r == height else "0" if r == 1 else "").rjust(axis_w - 1) + "▕",
              "dim")
        for i, c in enumerate(counts):
            level = c / peak * height - (r - 1)
            ch = "█" if level >= 1 else SPARK[int(level * 8) - 1] if level >= 0.125 else " "
            if c and r == 1 and ch == " ":
                ch = "▁"  # a non-empty bin is never invisible
            w = bounds[i + 1] - bounds[i]
            t.add(ch * (w - gap) + " " * gap, shade(i / max(1, n - 1), WARM))
        rows.append(t.text())
    rows.append(_axis(edges, axis_w, span))
    return rows


def _axis(edges: tuple[float, ...], left: int, span: int) -> Text:
    """Tick labels at the powers of ten the bins cover (log-spaced edges)."""
    line = [" "] * (left + span)
    if len(edges) >= 2 and edges[0] > 0 and edges[-1] > edges[0]:
        lo, hi = math.log10(edges[0]), math.log10(edges[-1])
        labels = [(left, _tick(edges[0]))]
        labels += [(left + round((p - lo) / (hi - lo) * span), _tick(10.0**p))
                   for p in range(math.ceil(lo), math.floor(hi) + 1)]
        labels.append((left + span - len(_tick(edges[-1])), _tick(edges[-1])))
        end = -1
        for pos, text in labels:
            pos = min(pos, len(line) - len(text))
            if pos > end:
                line[pos:pos + len(text)] = text
                end = pos + len(text)
    return Text("".join(line), style="dim", no_wrap=True)


class ReplayPanel(Panel):
    PANEL_TITLE = "Replay"
    DEFAULT_CSS = """
    ReplayPanel { border: round #c678dd; border-title-color: #d7a0ff; height: 1fr; }
    """

    replay: reactive[ReplayStats | None] = reactive(None)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.inserts: deque[float] = deque(maxlen=HISTORY)
        self.samples: deque[float] = deque(maxlen=HISTORY)

    def watch_replay(self, r: ReplayStats | None) -> None:
        if r is not None:
            self.inserts.append(r.insert_rate)
            self.samples.append(r.sample_rate)
            held = f" · {nbytes(r.nbytes)} held" if r.nbytes else ""
            self.border_subtitle = f"{si(r.inserted)} inserted · {si(r.sampled)} sampled{held}"

    def render(self) -> Group:
        r = self.replay
        if r is None:
            return Group(Text("waiting for the replay service…", style="dim italic"))
        width = self.content_width()
        fill = r.size / r.capacity if r.capacity else 0.0
        size = f" {si(r.size)}/{si(r.capacity)}"
        head = Text("fill ", style="bold", no_wrap=True)
        head.append_text(gauge(fill, max(6, width - 5 - len(size) - 5), COOL))
        head.append(size, style="bold cyan")
        head.append(f"{fill * 100:4.0f}%", style="dim")
        spark = max(0, (width - 44) // 2)
        rates = Text("in ", style="bold", no_wrap=True, overflow="ellipsis")
        rates.append(rate(r.insert_rate).rjust(7), style="green")
        if spark:
            rates.append(" ")
            rates.append_text(sparkline(self.inserts, spark, palette=COOL))
        rates.append("  out ", style="bold")
        rates.append(rate(r.sample_rate).rjust(7), style="magenta")
        if spark:
            rates.append(" ")
            rates.append_text(sparkline(self.samples, spark, palette=WARM))
        ratio = r.sample_rate / r.insert_rate if r.insert_rate > 0 else None
        rates.append(f"  ratio {num(ratio)}", style="dim")
        prio = Text("priority ", style="bold", no_wrap=True, overflow="ellipsis")
        prio.append("max ", style="dim")
        prio.append(num(r.max_priority, ".3g"), style="#f06a7a")
        prio.append("  mean ", style="dim")
        prio.append(num(r.mean_priority, ".3g"), style="#c04fb0")
        prio.append("  β ", style="dim")
        prio.append(num(r.beta, ".2f"), style="yellow")
        if r.waiting_insert:  # the rate limiter holds the simulators back for the learner
            prio.append("  inserts held", style="yellow")
        height = self.content_size.height - 4 if self.content_size.height else 8
        return Group(head, rates, prio, *histogram_rows(r.histogram, r.bin_edges,
                                                        max(1, height), width))
