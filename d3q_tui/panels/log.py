"""Log: the run's log lines, newest at the bottom, each appended once (by sequence number)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from d3q_core.snapshot import LogLine
from d3q_tui.panels.format import elapsed

LEVEL = {"info": ("·", "", ""), "warning": ("▲", "yellow", "yellow"),
         "error": ("✗", "bold red", "red")}


class LogPanel(RichLog):
    DEFAULT_CSS = """
    LogPanel { border: round #7f848e; border-title-color: #abb2bf; border-title-style: bold;
               height: 25%; min-height: 5; max-height: 14; overflow-y: auto;
               overflow-x: hidden;
               padding: 0 1; scrollbar-size-vertical: 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(max_lines=2000, wrap=True, markup=False, **kw)
        self.last_seq = 0

    def on_mount(self) -> None:
        self.border_title = "Log"

    def show(self, lines: tuple[LogLine, ...]) -> None:
        """Append the lines newer than the last one shown."""
        for line in lines:
            if line.seq > self.last_seq:
                self.last_seq = line.seq
                self._line(elapsed(line.elapsed), line.level, line.text)

    def note(self, text: str, level: str = "info") -> None:
        """A line from the dashboard itself, when the run can no longer log it."""
        self._line("   ui", level, text)

    def _line(self, when: str, level: str, text: str) -> None:
        mark, mark_style, text_style = LEVEL.get(level, LEVEL["info"])
        t = Text(f"{when} ", style="dim")
        t.append(f"{mark} ", style=mark_style or "dim")
        t.append(text, style=text_style)
        self.write(t)
