"""Scores: evaluation mean and max return against learner samples processed, the goal as a
line, and beside the chart the latest numbers and the learner's and simulators' throughput."""

from __future__ import annotations

import math
from collections import deque

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual_plotext import PlotextPlot

from d3q_core.snapshot import PHASE_GOAL, PHASE_STOPPED, EvalPoint, Snapshot
from d3q_tui.panels.format import COOL, WARM, goal_text, grid, nice_ticks, num, si, sparkline

MEAN, MAX, GOAL = (152, 195, 121), (86, 182, 194), (224, 108, 117)
HISTORY = 30
REPLOT_SECONDS = 1.0
FINAL_PHASES = (PHASE_GOAL, PHASE_STOPPED)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class ScoreChart(PlotextPlot):
    """Plotext line chart; replotted only when a new evaluation arrives."""

    DEFAULT_CSS = "ScoreChart { width: 1fr; height: 1fr; }"

    def plot_evals(self, evals: tuple[EvalPoint, ...], goal: float) -> None:
        plt = self.plt
        plt.clear_figure()
        xs = [e.learner_samples for e in evals]
        x_hi = max(xs[-1] if xs else 0, 1)
        goals = [goal] if math.isfinite(goal) else []  # no goal: no goal line
        top = max(goals + [e.max for e in evals] + [0.0]) * 1.08 or 1.0
        bottom = min([0.0] + [e.mean for e in evals])
        if goals:
            plt.plot([0, x_hi], [goal, goal], marker="─", color=GOAL)
        if evals:
            plt.plot(xs, [e.max for e in evals], marker="braille", color=MAX)
            plt.plot(xs, [e.mean for e in evals], marker="braille", color=MEAN)
        else:
            plt.title("waiting for the first evaluation")
        xt = nice_ticks(0, x_hi, 5) if evals else []
        yt = nice_ticks(bottom, top, 5)
        plt.xticks(xt, [si(x, 2) for x in xt])
        plt.yticks(yt, [f"{y:g}" for y in yt])
        plt.xlim(0, x_hi)
        plt.ylim(bottom, top)
        plt.xlabel("learner samples")
        self.refresh()


class ScoreNumbers(Widget):
    """The latest numbers; two columns of pairs when the chart is hidden (narrow screens)."""

    DEFAULT_CSS = "ScoreNumbers { width: 30; height: 1fr; padding: 0 0 0 1; }"

    snapshot: reactive[Snapshot | None] = reactive(None)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.learner_rate: deque[float] = deque(maxlen=HISTORY)
        self.env_rate: deque[float] = deque(maxlen=HISTORY)

    def watch_snapshot(self, s: Snapshot | None) -> None:
        if s is not None:
            self.learner_rate.append(s.learner.samples_per_s)
            self.env_rate.append(s.env_steps_per_s)

    def rows(self, s: Snapshot) -> list[tuple[str, Text]]:
        last = s.evals[-1] if s.evals else None
        reached = s.best_eval is not None and s.best_eval >= s.goal

        def v(text: str, style: str = "") -> Text:
            return Text(text, style=style)

        return [
            ("goal", v(goal_text(s.goal).removeprefix("goal ").replace("no goal", "none"),
                       _hex(GOAL))),
            ("last mean", v(num(last.mean if last else None), f"bold {_hex(MEAN)}")),
            ("last max", v(num(last.max if last else None), _hex(MAX))),
            ("best", v(num(s.best_eval) + (" ✓" if reached else ""),
                       "bold green" if reached else "bold")),
            ("confirmed", v(num(s.confirmed_eval), "bold green" if s.confirmed_eval is not None
                            and s.confirmed_eval >= s.goal else "")),
            ("evals", v(f"{s.eval_count}" + (f" @{si(last.learner_samples)}" if last else ""))),
            ("samples", v(si(s.learner.samples), "bold")),
            ("learner", v(si(s.learner.samples_per_s) + "/s", "#c678dd")),
            ("env steps", v(si(s.env_steps), "bold")),
            ("simulators", v(si(s.env_steps_per_s) + "/s", "#98c379")),
            ("episodes", v(si(s.episodes))),
            ("train ret", v(num(s.mean_train_return))),
            ("loss", v(num(s.learner.loss, ".4g"))),
            ("mean Q", v(num(s.learner.mean_q, ".2f"))),
            ("params", v(f"v{s.learner.param_version}")),
            ("wait", v(f"{s.learner.wait_fraction * 100:.0f}%",
                       "yellow" if s.learner.wait_fraction > 0.3 else "")),
        ]

    def render(self) -> Group:
        s = self.snapshot
        if s is None:
            return Group()
        width = self.content_size.width or 30
        pairs = [[Text(name, style="dim"), value] for name, value in self.rows(s)]
        if self.screen.has_class("-narrow"):  # chart hidden: label/value pairs side by side
            half = (len(pairs) + 1) // 2
            rows = [pairs[i] + (pairs[i + half] if i + half < len(pairs) else ["", ""])
                    for i in range(half)]
            return Group(*grid(rows, width, "llll", flex=1))
        spark = {"learner": (self.learner_rate, WARM), "simulators": (self.env_rate, COOL)}
        for row in pairs:
            hist = spark.get(row[0].plain)
            row.append(sparkline(hist[0], 6, palette=hist[1]) if hist else Text())
        legend = Text(no_wrap=True)
        for name, rgb, mark in (("mean", MEAN, "━"), ("max", MAX, "━"), ("goal", GOAL, "─")):
            legend.append(f"{mark}{mark} ", style=_hex(rgb))
            legend.append(f"{name} ", style="dim")
        return Group(legend, *grid(pairs, width, "llr", flex=1))


class ScoresPanel(Horizontal):
    DEFAULT_CSS = """
    ScoresPanel { border: round #61afef; border-title-color: #87cefa; border-title-style: bold;
                  border-subtitle-color: $text-muted; height: 1fr; }
    """

    # The container draws nothing itself: repainting it would recompose the chart too.
    snapshot: reactive[Snapshot | None] = reactive(None, repaint=False)

    def compose(self) -> ComposeResult:
        yield ScoreChart(id="chart")
        yield ScoreNumbers(id="numbers")

    def on_mount(self) -> None:
        self.border_title = "Scores"
        self._plotted: tuple[int, float] | None = None
        self._plotted_at = -REPLOT_SECONDS

    def watch_snapshot(self, s: Snapshot | None) -> None:
        if s is None:
            return
        # A fast learner brings several evaluations a second; the chart (the dashboard's
        # costliest widget) is redrawn at most once per second of run time, and at the end.
        key = (s.eval_count, s.goal)
        due = s.elapsed - self._plotted_at >= REPLOT_SECONDS or s.phase in FINAL_PHASES
        if key != self._plotted and due:
            self._plotted, self._plotted_at = key, s.elapsed
            self.query_one(ScoreChart).plot_evals(s.evals, s.goal)
        self.query_one(ScoreNumbers).snapshot = s
        last = s.evals[-1] if s.evals else None
        subtitle = (f"eval mean {num(last.mean)} · max {num(last.max)} · {goal_text(s.goal)}"
                    if last else goal_text(s.goal))
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle
