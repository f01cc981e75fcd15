"""Samples-per-insert rate limiting with Reverb's SampleToInsertRatio semantics.

The limiter keeps `inserts * spi - samples` within `spi * min_size +/- error_buffer`, so the
learner sees each transition about `spi` times whether the simulators are fast or slow, and
the simulators wait (back-pressure) when the learner falls behind. Counts are transitions.
"""

from __future__ import annotations


class RateLimiter:
    def __init__(self, samples_per_insert: float, min_size: int, error_buffer: float):
        if samples_per_insert <= 0 or min_size < 1 or error_buffer < 0:
            raise ValueError("samples_per_insert > 0, min_size >= 1, error_buffer >= 0")
        self.spi = float(samples_per_insert)
        self.min_size = int(min_size)
        offset = self.spi * self.min_size
        self.min_diff = offset - float(error_buffer)
        self.max_diff = offset + float(error_buffer)
        self.inserts = 0
        self.samples = 0

    @property
    def diff(self) -> float:
        return self.inserts * self.spi - self.samples

    def can_insert(self, n: int) -> bool:
        """Inserting n keeps the ratio within bounds (always true while filling up)."""
        return self.inserts < self.min_size or self.diff + n * self.spi <= self.max_diff

    def can_sample(self, n: int) -> bool:
        return self.inserts >= self.min_size and self.diff - n >= self.min_diff

    def insert(self, n: int) -> None:
        self.inserts += n

    def sample(self, n: int) -> None:
        self.samples += n

    def reset(self, size: int) -> None:
        """Restart the counts around a restored memory of `size` transitions (resume), so
        neither side starts out blocked."""
        self.inserts = max(size, self.min_size)
        self.samples = int(self.inserts * self.spi - self.spi * self.min_size)

    @staticmethod
    def error_buffer_for(
        spi: float, max_insert: int, sample_batch: int, configured: float
    ) -> float:
        """The slack must admit one whole insert and one whole sample batch, or the two sides
        could each wait for the other forever."""
        return max(configured, 2.0 * (spi * max_insert + sample_batch))
