"""The sum tree against a naive reference: leaves in a plain array, cumsum + searchsorted.

Priorities are small integers (zeros included) in the property tests, so every sum is exact in
float64 and the tree must agree with the reference exactly, whatever order it adds in."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d3q_core.algo.sumtree import SumTree

TINY = float(np.finfo(np.float64).smallest_subnormal)


class Reference:
    def __init__(self, capacity: int):
        self.p = np.zeros(capacity)

    def set(self, idx, pr) -> None:
        for i, x in zip(idx, pr, strict=True):  # one at a time: the last write wins
            self.p[i] = x

    def find(self, values: np.ndarray) -> np.ndarray:
        # intervals (c_i-1, c_i]; out-of-range values clamp into [tiny, total]
        cs = np.cumsum(self.p)
        v = np.clip(np.nan_to_num(values, nan=0.0), TINY, cs[-1])
        return np.searchsorted(cs, v, side="left")

    @property
    def min(self) -> float:
        pos = self.p[self.p > 0]
        return float(pos.min()) if pos.size else np.inf


def check_against(tree: SumTree, ref: Reference, values: np.ndarray) -> None:
    assert np.array_equal(tree.leaves, ref.p)
    assert tree.total == ref.p.sum()
    assert tree.min == ref.min
    if ref.p.sum() == 0:
        with pytest.raises(ValueError):
            tree.find(values)
        return
    got = tree.find(values)
    assert got.dtype == np.int64
    assert np.array_equal(got, ref.find(values))
    assert (ref.p[got] > 0).all()


def internals(tree: SumTree) -> list[np.ndarray]:
    return [a.copy() for a in (*tree._raw, *tree._mins)]


# capacities 1, 3, 1000 ...; arities and top sizes that give zero to four block levels of sums,
# and one to three levels of minima
shapes = st.sampled_from([
    (1, 16, 4096, 65536), (2, 2, 1, 1), (3, 2, 1, 1), (3, 4, 1, 2), (5, 2, 2, 1),
    (17, 4, 3, 2), (64, 4, 4, 3), (100, 8, 5, 65536), (1000, 16, 4096, 65536),
    (1000, 4, 7, 5), (1000, 16, 10, 3), (1000, 2, 64, 100), (777, 32, 20, 1), (300, 16, 300, 1),
])


@st.composite
def programs(draw):
    capacity, arity, top, min_top = draw(shapes)
    ops = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            n = draw(st.integers(1, 40))
            idx = draw(st.lists(st.integers(0, capacity - 1), min_size=n, max_size=n))
            if n > 1 and draw(st.booleans()):  # force duplicates
                idx[-1] = idx[0]
            pr = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
            ops.append(("set", np.array(idx), np.array(pr, float)))
        else:
            start = draw(st.integers(0, capacity - 1))
            n = draw(st.integers(1, capacity - start))
            pr = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
            ops.append(("range", start, np.array(pr, float)))
    return capacity, arity, top, min_top, ops, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_tree_matches_reference(program):
    capacity, arity, top, min_top, ops, seed = program
    tree = SumTree(capacity, arity=arity, top_max=top, min_top_max=min_top)
    ref = Reference(capacity)
    rng = np.random.default_rng(seed)
    for op, a, pr in ops:
        if op == "set":
            tree.set(a, pr)
            ref.set(a, pr)
        else:
            tree.set_range(a, pr)
            ref.p[a : a + pr.size] = pr
        total = ref.p.sum()
        # random points, the exact interval ends, and out-of-range ones
        ends = np.cumsum(ref.p)
        values = np.concatenate([rng.random(64) * total, ends, ends + 0.5, [0.0, -1.0, np.nan,
                                 total, total * 2, np.inf]])
        check_against(tree, ref, values)
    # the tree is a pure function of its leaves: a rebuild changes no bit
    before = internals(tree)
    tree.rebuild()
    assert all(np.array_equal(a, b) for a, b in zip(before, internals(tree), strict=True))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 7, 4096, 5000, 70_000]))
def test_real_valued_priorities(seed, capacity):
    """Non-integer sums round; the leaf found must still hold v up to rounding, never be 0."""
    rng = np.random.default_rng(seed)
    tree = SumTree(capacity)
    p = rng.random(capacity) * 10.0 ** rng.uniform(-3, 3, capacity)
    p[rng.random(capacity) < 0.3] = 0.0
    p[-1] = 0.0  # trailing zeros: drift past the end must not land there
    tree.set_range(0, p)
    if p.sum() == 0:
        return
    idx = rng.integers(0, capacity, 200)
    tree.set(idx, rng.random(200))
    p[idx] = tree.get(idx)
    cs = np.cumsum(p)
    assert tree.total == pytest.approx(cs[-1], rel=1e-12)
    assert tree.min == p[p > 0].min()
    values = np.concatenate([rng.random(500) * cs[-1], [cs[-1], np.nextafter(cs[-1], 0.0)]])
    got = tree.find(values)
    assert (p[got] > 0).all()
    lo = np.where(got > 0, cs[np.maximum(got - 1, 0)], 0.0)
    tol = 1e-12 * cs[-1]
    assert ((lo - tol <= values) & (values <= cs[got] + tol)).all()


def test_duplicates_last_write_wins():
    tree = SumTree(10)
    tree.set([3, 3, 3, 5], [1.0, 7.0, 2.0, 4.0])
    assert tree.get([3, 5]).tolist() == [2.0, 4.0]
    assert tree.total == 6.0 and tree.min == 2.0


def test_zero_leaf_never_found_even_past_the_total():
    tree = SumTree(100)
    tree.set([10, 50], [0.1, 0.2])  # the sum is inexact in binary
    total = tree.total
    for v in (0.0, TINY, 0.1, np.nextafter(0.1, 1.0), total, np.nextafter(total, 1.0),
              total * (1 + 1e-9), 1e300):
        assert tree.find([v])[0] in (10, 50)
    assert tree.find([total * 2])[0] == 50
    assert tree.find([0.0])[0] == 10


def test_min_is_exact_and_tracks_raises():
    tree = SumTree(5000)
    tree.set_range(0, np.full(5000, 3.0))
    tree.set([4321], [0.5])
    assert tree.min == 0.5
    tree.set([4321], [9.0])  # the minimum leaf goes up: the min must follow
    assert tree.min == 3.0
    tree.set(np.arange(5000), np.zeros(5000))
    assert tree.min == np.inf and tree.total == 0.0


def test_leaves_is_a_view():
    tree = SumTree(8)
    leaves = tree.leaves
    tree.set([2], [4.0])
    assert leaves[2] == 4.0 and np.shares_memory(leaves, tree.leaves)


@pytest.mark.parametrize("capacity, arity", [(0, 16), (-3, 16), (10, 3), (10, 1), (10, 512)])
def test_bad_shapes(capacity, arity):
    with pytest.raises(ValueError):
        SumTree(capacity, arity=arity)


def test_bad_writes():
    tree = SumTree(4)
    with pytest.raises(IndexError):
        tree.set([4], [1.0])
    with pytest.raises(IndexError):
        tree.set([-1], [1.0])
    with pytest.raises(TypeError):
        tree.set([1.5], [1.0])
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError):
            tree.set([0], [bad])
    with pytest.raises(ValueError):
        tree.set([0, 1], [1.0])
    with pytest.raises(IndexError):
        tree.set_range(3, [1.0, 1.0])
    assert tree.total == 0.0
    with pytest.raises(ValueError, match="total"):
        tree.find([0.5])


def test_empty_batches():
    tree = SumTree(4)
    tree.set([], [])
    tree.set(np.empty(0, np.int64), np.empty(0))
    assert tree.total == 0.0
    tree.set([1], [2.0])
    assert tree.find([]).size == 0


def test_negative_zero_and_scalar_priority():
    tree = SumTree(4)
    tree.set([0, 1, 2], 2.0)
    tree.set([1], [-0.0])
    assert tree.total == 4.0 and tree.min == 2.0
    assert tree.find([3.0])[0] == 2
