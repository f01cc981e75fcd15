"""Processes: a row per d3q process (role, pid, state, rate with unit, CPU, memory, restarts);
many simulators fold into one row when the panel is small."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive

from d3q_core.snapshot import ProcessStats
from d3q_tui.panels.base import Panel
from d3q_tui.panels.format import grid, nbytes, shade, si

ROLE_STYLE = {"orchestrator": "#61afef", "learner": "#c678dd", "replay": "#56b6c2",
              "simulator": "#98c379", "evaluator": "#e5c07b", "preview": "#d19a66",
              "tensorboard": "#e06c75"}
STATE = {"running": ("●", "green"), "starting": ("◌", "yellow"), "paused": ("‖", "yellow"),
         "restarting": ("↻", "bold yellow"), "exited": ("○", "dim"), "failed": ("✗", "bold red")}
SHORT_UNIT = {"samples/s": "smp/s", "steps/s": "stp/s", "evals/min": "ev/m"}


def fold_simulators(rows: tuple[ProcessStats, ...], keep: int) -> list[ProcessStats]:
    """More than `keep` simulators become one summary row (rates, CPU, memory summed)."""
    sims = [p for p in rows if p.role == "simulator"]
    if len(sims) <= keep:
        return list(rows)
    states = {p.state for p in sims}
    state = states.pop() if len(states) == 1 else ("failed" if "failed" in states
                                                    else "restarting" if "restarting" in states
                                                    else "running")
    nodes = {p.node for p in sims}
    total = ProcessStats(
        "simulator", len(sims), None, state, sum(p.rate for p in sims), sims[0].rate_unit,
        sum(p.cpu_percent for p in sims), sum(p.rss_bytes for p in sims),
        sum(p.restarts for p in sims), f"{len(sims)} processes",
        nodes.pop() if len(nodes) == 1 else f"{len(nodes)} nodes")
    out, placed = [], False
    for p in rows:
        if p.role != "simulator":
            out.append(p)
        elif not placed:
            out.append(total)
            placed = True
    return out


class ProcessesPanel(Panel):
    PANEL_TITLE = "Processes"
    DEFAULT_CSS = """
    ProcessesPanel { border: round #e06c75; border-title-color: #ff8787; height: auto;
                     max-height: 24; }
    """

    processes: reactive[tuple[ProcessStats, ...]] = reactive(())

    def watch_processes(self, old: tuple[ProcessStats, ...],
                        rows: tuple[ProcessStats, ...]) -> None:
        if len(old) != len(rows):  # a new height: lay out again (not on every Snapshot)
            self.refresh(layout=True)
        rss = sum(p.rss_bytes for p in rows)
        restarts = sum(p.restarts for p in rows)
        sub = f"{len(rows)} procs · {nbytes(rss)} RSS"
        self.border_subtitle = sub + (f" · {restarts} restart{'s' * (restarts > 1)}"
                                      if restarts else "")

    def render(self) -> Group:
        width = self.content_width()
        narrow = self.screen.has_class("-narrow")
        keep = max(1, self.content_size.height - 3) if narrow else 8
        rows = fold_simulators(self.processes, keep)
        wide = width >= 52
        note = width >= 84
        header = ["role", "pid", "state", "rate", "cpu", "mem", "rst", "note"] if wide else \
            ["role", "state", "rate", "cpu"]
        header = header[:len(header) - (wide and not note)]
        justify = ("lrlrrrrl" if wide else "llrr")[:len(header)]
        nodes = len({p.node for p in rows}) > 1  # a cluster: where each one runs
        if nodes:
            header.insert(1, "node")
            justify = justify[0] + "l" + justify[1:]
        body = [self._cells(p, wide, width >= 66, note) for p in rows]
        if nodes:
            for p, cells in zip(rows, body, strict=True):
                cells.insert(1, Text(p.node, style="#5fd75f"))
        lines = grid([[Text(h, style="bold dim") for h in header], *body], width, justify)
        return Group(*lines)

    @staticmethod
    def _cells(p: ProcessStats, wide: bool, full_unit: bool, note: bool) -> list:
        name = p.name if p.pid is not None or p.role != "simulator" else f"simulators ×{p.index}"
        if not wide:
            name = name.replace("simulator", "sim").replace("orchestrator", "orch")
        cells: list = [Text(name, style=f"bold {ROLE_STYLE.get(p.role, '')}")]
        if wide:
            cells.append(Text(str(p.pid) if p.pid else "-", style="dim"))
        glyph, style = STATE.get(p.state, ("?", ""))
        cells.append(Text(f"{glyph} {p.state}" if wide else glyph, style=style))
        r = Text(no_wrap=True)
        if p.rate_unit:
            r.append(si(p.rate), style="bold cyan")
            r.append(" " + (p.rate_unit if full_unit else SHORT_UNIT.get(p.rate_unit,
                                                                         p.rate_unit)),
                     style="dim cyan")
        cells.append(r)
        cells.append(Text(f"{p.cpu_percent:.0f}%", style=shade(min(p.cpu_percent, 100) / 100)))
        if wide:
            cells.append(Text(nbytes(p.rss_bytes), style="#8fa1b3"))
            cells.append(Text(str(p.restarts), style="bold red" if p.restarts else "dim"))
        if note:
            cells.append(Text(p.detail, style="dim"))
        return cells
