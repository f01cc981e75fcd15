"""Small rendering helpers shared by the panels: bars, rates, byte sizes."""

from __future__ import annotations

import math

from rich.text import Text

BLOCKS = " ▏▎▍▌▋▊▉█"
SPARK = "▁▂▃▄▅▆▇█"


def bar(fraction: float, width: int, style: str = "green", empty: str = "grey23") -> Text:
    """A horizontal bar with eighth-block resolution."""
    fraction = 0.0 if not math.isfinite(fraction) else min(max(fraction, 0.0), 1.0)
    eighths = int(round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    t = Text()
    t.append("█" * full, style=style)
    if full < width:
        t.append(BLOCKS[part] if part else " ", style=style)
        t.append("░" * (width - full - 1), style=empty)
    return t


def load_style(percent: float) -> str:
    if percent >= 85:
        return "bold red"
    if percent >= 60:
        return "yellow"
    return "green"


def rate(x: float, unit: str = "/s") -> str:
    if not math.isfinite(x):
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.1f}{suffix}{unit}"
    return f"{x:.0f}{unit}"


def count(x: float) -> str:
    return rate(x, "")


def nbytes(n: float) -> str:
    for div, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= div:
            return f"{n / div:.1f} {suffix}"
    return f"{n:.0f} B"


def num(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def sparkline(values: list[float] | tuple[float, ...], width: int) -> str:
    if not values:
        return ""
    vals = list(values)[-width:]
    hi = max(vals) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int(v / hi * (len(SPARK) - 1)))] for v in vals)


def elapsed(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
