"""A cheap periodic trigger for hot loops."""

from __future__ import annotations

import time


class Ticker:
    """Fires at most every `period` seconds; keeps periodic work out of hot loops cheaply."""

    def __init__(self, period: float):
        self.period = period
        self.last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.period:
            self.last = now
            return True
        return False
