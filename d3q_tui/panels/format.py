"""Small rendering helpers shared by the panels: gradient gauges, sparklines, compact numbers.

Plain functions returning Rich Text, so a panel's `render` stays a few readable lines and the
look (btop-like gradients) is the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from rich.text import Text

EIGHTHS = " ▏▎▍▌▋▊▉"
SPARK = "▁▂▃▄▅▆▇█"
EMPTY = "#3a3a3a"

# Low -> high load: green, lime, yellow, orange, red (as btop's default theme).
LOAD = ("#2e9e44", "#5fb83a", "#9ac930", "#d4c22b", "#e8a33a", "#e86d3a", "#e0413a")
COOL = ("#1f6fb2", "#2a8fc7", "#34aed4", "#3fc6d3", "#5fd7c0")  # fill, memory
WARM = ("#6f4fb8", "#9a4fc0", "#c04fb0", "#e0559a", "#f06a7a")  # priorities, samples


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def shade(fraction: float, palette: Sequence[str] = LOAD) -> str:
    """The palette colour for a position in [0, 1]."""
    f = min(max(fraction if _finite(fraction) else 0.0, 0.0), 1.0)
    return palette[min(len(palette) - 1, int(f * len(palette)))]


class Runs:
    """Builds a Text from (characters, style) pieces, merging neighbours of the same style:
    a gradient bar is a handful of spans, not one per cell (cheaper to render)."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []

    def add(self, chars: str, style: str) -> None:
        if self.parts and self.parts[-1][1] == style:
            self.parts[-1] = (self.parts[-1][0] + chars, style)
        elif chars:
            self.parts.append((chars, style))

    def text(self) -> Text:
        return Text.assemble(*self.parts, no_wrap=True)


def gauge(fraction: float, width: int, palette: Sequence[str] = LOAD) -> Text:
    """A bar with eighth-cell resolution, each cell coloured by its position (a gradient)."""
    width = max(1, width)
    f = min(max(fraction if _finite(fraction) else 0.0, 0.0), 1.0)
    eighths = int(round(f * width * 8))
    full, part = divmod(eighths, 8)
    runs = Runs()
    for i in range(full):
        runs.add("█", shade((i + 0.5) / width, palette))
    if full < width:
        if part:
            runs.add(EIGHTHS[part], f"{shade((full + 0.5) / width, palette)} on {EMPTY}")
            full += 1
        runs.add(" " * (width - full), f"on {EMPTY}")
    return runs.text()


def sparkline(values: Iterable[float], width: int, hi: float | None = None,
              palette: Sequence[str] = LOAD) -> Text:
    """The last `width` values as block heights, scaled to `hi` (default: their maximum)."""
    vals = [v if _finite(v) else 0.0 for v in values][-width:] if width > 0 else []
    top = hi if hi else max(vals, default=0.0) or 1.0
    runs = Runs()
    runs.add(" " * (width - len(vals)), "")
    for v in vals:
        f = min(max(v / top, 0.0), 1.0)
        runs.add(SPARK[min(len(SPARK) - 1, int(f * len(SPARK)))], shade(f, palette))
    return runs.text()


def si(x: float | None, digits: int = 3) -> str:
    """Three significant digits with k/M/G: 950, 13.0k, 110k, 1.02M."""
    if not _finite(x):
        return "-"
    assert x is not None
    units = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
    for i, (div, suffix) in enumerate(units):
        if abs(x) < div and div != 1.0:
            continue
        v = x / div
        if suffix == "" and float(v).is_integer():
            return str(int(v))
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v))))) if v else 0
        text = f"{v:.{decimals}f}"
        if abs(float(text)) >= 1000 and i > 0:  # 999.96k rounds up into the next unit
            div, suffix = units[i - 1]
            text = f"{x / div:.{digits - 1}f}"
        return text + suffix
    return str(x)


def rate(x: float | None, unit: str = "/s") -> str:
    return "-" if not _finite(x) else si(x) + unit


def nbytes(n: float) -> str:
    for div, suffix in ((2**40, "T"), (2**30, "G"), (2**20, "M"), (2**10, "K")):
        if n >= div:
            v = n / div
            return f"{v:.1f}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return f"{n:.0f}B"


def goal_text(goal: float) -> str:
    """"goal 475", or "no goal" for an env without one (Atari: the run goes to its limits)."""
    return f"goal {goal:g}" if math.isfinite(goal) else "no goal"


def num(x: float | None, spec: str = ".1f") -> str:
    return "-" if not _finite(x) else format(x, spec)


def elapsed(seconds: float) -> str:
    m, s = divmod(int(max(0.0, seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick positions (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    if not (_finite(lo) and _finite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10)), key=lambda s: abs((hi - lo) / s - n))
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def grid(rows: Sequence[Sequence[Text | str]], width: int, justify: str, flex: int = 0,
         gap: int = 1) -> list[Text]:
    """Rows of cells as aligned lines, much cheaper than a rich Table (rendered 4 times a
    second). `justify` has one 'l' or 'r' per column; column `flex` takes the spare width
    and is cut with an ellipsis when there is too little."""
    cells = [[c if isinstance(c, Text) else Text(c) for c in row] for row in rows]
    n = len(justify)
    widths = [max((r[i].cell_len for r in cells if i < len(r)), default=0) for i in range(n)]
    spare = width - sum(widths) - gap * (n - 1)
    widths[flex] = max(1, widths[flex] + spare)
    out = []
    for row in cells:
        line = Text(no_wrap=True, overflow="ellipsis")
        for i, cell in enumerate(row[:n]):
            if i:
                line.append(" " * gap)
            c = cell.copy()
            if c.cell_len > widths[i]:
                c.truncate(widths[i], overflow="ellipsis")
            pad = " " * (widths[i] - c.cell_len)
            if justify[i] == "r":
                line.append(pad)
                line.append_text(c)
            else:
                line.append_text(c)
                line.append(pad)
        out.append(line)
    return out


def label(text: str, value: str | Text, style: str = "") -> Text:
    """`text value` with a dim label, for dense key/value lines."""
    t = Text(text + " ", style="dim")
    t.append(value if isinstance(value, Text) else Text(value, style=style))
    return t
