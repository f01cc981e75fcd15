"""Log: the run's log lines, newest at the bottom, each appended once (by sequence number).

A plain widget that paints the tail of its lines, not a RichLog: RichLog grows its virtual
size on every write, and a size change makes Textual lay out and repaint the whole screen
(30-60 ms at 160x50 on a busy 2-core box, several times a second while evaluations stream
in). Here an append is a repaint of this panel only. The mouse wheel scrolls back; the full
log is the run directory's log.txt.
"""

from __future__ import annotations

from collections import deque

from rich.console import Group
from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.widget import Widget

from d3q_core.snapshot import LogLine
from d3q_tui.panels.format import elapsed

LEVEL = {"info": ("·", "", ""), "warning": ("▲", "yellow", "yellow"),
         "error": ("✗", "bold red", "red")}
MAX_LINES = 2000


class LogPanel(Widget):
    DEFAULT_CSS = """
    LogPanel { border: round #7f848e; border-title-color: #abb2bf; border-title-style: bold;
               border-subtitle-color: $text-muted;
               height: 25%; min-height: 5; max-height: 14; padding: 0 1; }
    """

    back: reactive[int] = reactive(0)  # lines scrolled back from the newest (0: follow)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.last_seq = 0
        self.entries: deque[Text] = deque(maxlen=MAX_LINES)
        self._wrapped: dict[int, list[Text]] = {}  # id(entry) -> its lines at _wrap_width
        self._wrap_width = 0

    def on_mount(self) -> None:
        self.border_title = "Log"

    # --- writing ----------------------------------------------------------------------------

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
        t = Text(f"{when} ", style="dim", no_wrap=False)
        t.append(f"{mark} ", style=mark_style or "dim")
        t.append(text, style=text_style)
        if len(self.entries) == MAX_LINES:
            self._wrapped.pop(id(self.entries[0]), None)
        self.entries.append(t)
        if self.back:  # reading back: keep the same lines in view
            self.back += len(self._wrap(t))
        self.refresh()

    @property
    def text(self) -> str:
        """Every line, plain (for tests and copying)."""
        return "\n".join(t.plain for t in self.entries)

    # --- painting ---------------------------------------------------------------------------

    def _wrap(self, entry: Text) -> list[Text]:
        width = max(1, self.content_size.width or 80)
        if width != self._wrap_width:
            self._wrapped.clear()
            self._wrap_width = width
        lines = self._wrapped.get(id(entry))
        if lines is None:
            lines = self._wrapped[id(entry)] = list(entry.wrap(self.app.console, width))
        return lines

    def render(self) -> Group:
        height = max(1, self.content_size.height)
        need = height + self.back
        tail: list[Text] = []
        for entry in reversed(self.entries):  # only as many entries as fill the view
            tail[:0] = self._wrap(entry)
            if len(tail) >= need:
                break
        end = len(tail) - self.back
        return Group(*tail[max(0, end - height) : end])

    def watch_back(self, back: int) -> None:
        self.border_subtitle = f"↑ {back} lines back · wheel down to follow" if back else ""

    # --- scrolling --------------------------------------------------------------------------

    def _scroll(self, lines: int) -> None:
        total = sum(len(self._wrap(e)) for e in self.entries)
        self.back = max(0, min(self.back + lines, total - max(1, self.content_size.height)))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._scroll(3)
        event.stop()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._scroll(-3)
        event.stop()
