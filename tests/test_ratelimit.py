"""The samples-per-insert rate limiter keeps the replay ratio on slow and fast machines."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.algo.ratelimit import RateLimiter


def simulate(spi, insert_batch, sample_batch, insert_bias, steps=20000, seed=0):
    """Random interleaving of eager inserts and samples, biased to one side."""
    rng = np.random.default_rng(seed)
    buf = RateLimiter.error_buffer_for(spi, insert_batch, sample_batch, 0.0)
    lim = RateLimiter(spi, 1000, buf)
    for _ in range(steps):
        if rng.random() < insert_bias:
            if lim.can_insert(insert_batch):
                lim.insert(insert_batch)
        elif lim.can_sample(sample_batch):
            lim.sample(sample_batch)
    return lim


@pytest.mark.parametrize("bias", [0.05, 0.5, 0.95])  # slow simulators .. fast simulators
@pytest.mark.parametrize("spi", [1.0, 8.0, 32.0])
def test_ratio_holds_whichever_side_is_faster(spi, bias):
    lim = simulate(spi, insert_batch=64, sample_batch=256, insert_bias=bias)
    assert lim.inserts > 1000 and lim.samples > 0
    ratio = lim.samples / (lim.inserts - 1000)
    assert ratio == pytest.approx(spi, rel=0.1)


def test_no_sampling_before_min_size_and_inserts_free_while_filling():
    lim = RateLimiter(8.0, 1000, 100.0)
    assert not lim.can_sample(1)
    lim.insert(999)
    assert lim.can_insert(10**6) and not lim.can_sample(1)
    lim.insert(1)
    assert lim.can_sample(50)


def test_inserts_block_when_learner_lags():
    lim = RateLimiter(4.0, 10, 100.0)
    lim.insert(10)
    assert not lim.can_insert(30)  # 30 * 4 = 120 > buffer
    assert lim.can_insert(20)


def test_reset_after_resume_centres_the_counts():
    lim = RateLimiter(8.0, 1000, 5000.0)
    lim.reset(50_000)
    assert lim.can_sample(256) and lim.can_insert(64)


def test_error_buffer_admits_a_whole_insert_and_sample():
    assert RateLimiter.error_buffer_for(8.0, 100, 256, 0.0) >= 8 * 100 + 256
    assert RateLimiter.error_buffer_for(8.0, 100, 256, 1e6) == 1e6
