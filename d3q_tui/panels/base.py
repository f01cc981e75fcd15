"""The frame every panel shares: a rounded border in the panel's own colour, title on it."""

from __future__ import annotations

from textual.widget import Widget


class Panel(Widget):
    """A bordered box; subclasses set PANEL_TITLE and colour their border in DEFAULT_CSS."""

    PANEL_TITLE = ""
    DEFAULT_CSS = """
    Panel {
        border: round $panel-lighten-2;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.border_title = self.PANEL_TITLE

    def content_width(self, fallback: int = 60) -> int:
        """Width inside border and padding; a fallback before the first layout."""
        return self.content_size.width or fallback
