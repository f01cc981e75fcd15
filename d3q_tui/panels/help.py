"""The help screen: what every key does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("p", "open or close the preview window (greedy play with the newest parameters)"),
    ("s", "write a checkpoint now; the log says where"),
    ("space", "pause or resume training (simulators and learner)"),
    ("t", "start TensorBoard on this run's logs (127.0.0.1), or stop it"),
    ("q", "quit: final checkpoint, every process exits, terminal restored"),
    ("?", "this help"),
]


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 80; height: auto; border: thick $accent;
                            background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold magenta", no_wrap=True)
        t.add_column()
        for key, what in KEYS:
            t.add_row(key, what)
        with Vertical():
            yield Static("[b]d3q keys[/b]  (escape closes)\n")
            yield Static(t)
            yield Static("\nPanels: devices (per-core load, GPUs), processes, replay (fill, "
                         "rates, priority histogram), scores (evaluation vs learner samples), "
                         "log.", classes="dim")
