"""The help screen: every key and what each panel shows."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("p", "preview window on/off: greedy play with the newest parameters"),
    ("s", "write a checkpoint now (the log says where)"),
    ("space", "pause / resume simulators and learner"),
    ("t", "TensorBoard on/off (127.0.0.1, a free port; the URL is in the log)"),
    ("q, ctrl+c", "quit: final checkpoint, every process exits (twice: at once)"),
    ("?", "this help; escape closes it"),
]
PANELS = [
    ("Devices", "load per CPU core with recent history; GPUs; where the learner runs"),
    ("Processes", "every d3q process: state, throughput, CPU, memory, restarts"),
    ("Replay", "fill, insert/sample rates, priority histogram (log bins), IS beta"),
    ("Scores", "greedy evaluation mean/max vs learner samples; the goal line"),
    ("Log", "what the run did, newest at the bottom"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background; }
    HelpScreen > Vertical { width: 84; max-width: 100%; height: auto; max-height: 100%;
                            border: round #c678dd; border-title-color: #d7a0ff;
                            background: $surface; padding: 0 2; }
    """

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold #e5c07b", no_wrap=True)
        keys.add_column()
        for key, what in KEYS:
            keys.add_row(key, what)
        panels = Table.grid(padding=(0, 2))
        panels.add_column(style="bold #61afef", no_wrap=True)
        panels.add_column(style="dim")
        for name, what in PANELS:
            panels.add_row(name, what)
        with Vertical() as box:
            box.border_title = "d3q · keys"
            yield Static(keys)
            yield Static("")
            yield Static(panels)
