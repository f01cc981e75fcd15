"""Scores: evaluation mean and max return against learner samples, with the goal as a line,
and the latest numbers beside the chart."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static
from textual_plotext import PlotextPlot

from d3q_core.snapshot import EvalPoint, Snapshot
from d3q_tui.panels.format import count, num


class ScoreChart(PlotextPlot):
    DEFAULT_CSS = "ScoreChart { width: 1fr; }"

    def plot_evals(self, evals: tuple[EvalPoint, ...], goal: float) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.theme("textual-design-dark") if hasattr(plt, "theme") else None
        plt.xlabel("learner samples")
        if evals:
            xs = [e.learner_samples for e in evals]
            plt.plot(xs, [e.max for e in evals], label="max", color="cyan", marker="braille")
            plt.plot(xs, [e.mean for e in evals], label="mean", color="green",
                     marker="braille")
            plt.hline(goal, color="red")
            top = max(goal, max(e.max for e in evals))
            plt.ylim(min(0.0, min(e.mean for e in evals)), top * 1.05)
        else:
            plt.title("waiting for the first evaluation")
        self.refresh()


class ScoreNumbers(Static):
    DEFAULT_CSS = "ScoreNumbers { width: 26; padding: 0 1; }"

    def show(self, s: Snapshot) -> None:
        last = s.evals[-1] if s.evals else None
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_row("goal", Text(f"{s.goal:g}", style="red"))
        t.add_row("last mean", Text(num(last.mean if last else None), style="bold green"))
        t.add_row("last max", Text(num(last.max if last else None), style="cyan"))
        t.add_row("best", Text(num(s.best_eval), style="bold green"))
        t.add_row("confirmed", Text(num(s.confirmed_eval), style="bold cyan"))
        t.add_row("evals", str(len(s.evals)))
        t.add_row("", "")
        t.add_row("samples", count(s.learner.samples))
        t.add_row("learner", Text(f"{count(s.learner.samples_per_s)}/s"))
        t.add_row("env steps", count(s.env_steps))
        t.add_row("simulators", Text(f"{count(s.env_steps_per_s)}/s"))
        t.add_row("episodes", count(s.episodes))
        t.add_row("train return", num(s.mean_train_return))
        t.add_row("loss", num(s.learner.loss, ".4f"))
        t.add_row("mean Q", num(s.learner.mean_q, ".2f"))
        t.add_row("version", str(s.learner.param_version))
        self.update(t)


class ScoresPanel(Horizontal):
    DEFAULT_CSS = """
    ScoresPanel { border: round $accent; border-title-color: $accent; height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield ScoreChart(id="chart")
        yield ScoreNumbers(id="numbers")

    def on_mount(self) -> None:
        self.border_title = "Scores"
        self._plotted: tuple[int, float] = (-1, 0.0)

    def show(self, s: Snapshot) -> None:
        key = (len(s.evals), s.goal)
        if key != self._plotted:
            self._plotted = key
            self.query_one(ScoreChart).plot_evals(s.evals, s.goal)
        self.query_one(ScoreNumbers).show(s)
