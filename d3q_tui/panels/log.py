"""Log: the run's log lines, newest at the bottom; only lines newer than the last shown."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from d3q_core.snapshot import LogLine

LEVEL_STYLE = {"warning": "yellow", "error": "bold red"}


class LogPanel(RichLog):
    DEFAULT_CSS = """
    LogPanel { border: round $accent; border-title-color: $accent; height: 25%;
               min-height: 5; max-height: 12; }
    """

    def on_mount(self) -> None:
        self.border_title = "Log"
        self.last_seq = 0
        self.max_lines = 2000
        self.wrap = True

    def show(self, lines: tuple[LogLine, ...]) -> None:
        for line in lines:
            if line.seq > self.last_seq:
                self.last_seq = line.seq
                t = Text(f"{line.elapsed:7.1f}s ", style="dim")
                t.append(line.text, style=LEVEL_STYLE.get(line.level, ""))
                self.write(t)

    def note(self, text: str, level: str = "info") -> None:
        """A line from the face itself (preview started, TensorBoard URL)."""
        self.write(Text(f"   ui    {text}", style=LEVEL_STYLE.get(level, "italic")))
