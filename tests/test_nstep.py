"""n-step returns against hand-computed cases, including truncation, termination and resets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from d3q_core.algo.nstep import NStepBuffer
from d3q_core.algo.transitions import transition_dtype

F, T = np.array([False]), np.array([True])


def push(buf, t, reward=1.0, term=F, trunc=F, valid=T):
    return buf.step(np.array([[t]], np.float32), np.array([t]), np.array([reward]),
                    np.array([[t + 1]], np.float32), term, trunc, valid)


def test_full_windows_emit_discounted_returns_and_gamma_n():
    buf = NStepBuffer(1, 3, 0.5, transition_dtype(1))
    assert push(buf, 0).size == 0 and push(buf, 1).size == 0
    out = push(buf, 2, reward=4.0)
    assert out.size == 1
    assert out["obs"][0, 0] == 0 and out["action"][0] == 0
    assert out["reward"][0] == pytest.approx(1 + 0.5 * 1 + 0.25 * 4)
    assert out["next_obs"][0, 0] == 3
    assert out["discount"][0] == pytest.approx(0.125)


def test_termination_flushes_everything_without_bootstrap():
    buf = NStepBuffer(1, 3, 0.5, transition_dtype(1))
    push(buf, 0, 1.0)
    push(buf, 1, 2.0)
    out = push(buf, 2, 4.0, term=T)
    assert [int(o) for o in out["action"]] == [0, 1, 2]
    assert out["reward"] == pytest.approx([1 + 1 + 1, 2 + 2, 4])
    assert out["discount"] == pytest.approx([0, 0, 0])


def test_truncation_bootstraps_from_the_final_observation():
    buf = NStepBuffer(1, 3, 0.5, transition_dtype(1))
    push(buf, 0, 1.0)
    out = push(buf, 1, 1.0, trunc=T)
    assert out["reward"] == pytest.approx([1.5, 1.0])
    assert out["discount"] == pytest.approx([0.25, 0.5])  # gamma^(steps to the end)
    assert np.all(out["next_obs"][:, 0] == 2)  # the truncation step's observation


def test_reset_step_is_dropped_and_no_transition_spans_two_episodes():
    buf = NStepBuffer(1, 2, 0.9, transition_dtype(1))
    push(buf, 0)
    push(buf, 1, term=T)
    # the autoreset step: its action was ignored by the env
    assert push(buf, 99, valid=F).size == 0
    assert push(buf, 10).size == 0  # a new episode needs n steps again
    out = push(buf, 11)
    assert out["obs"][0, 0] == 10 and out["next_obs"][0, 0] == 12


def test_copies_are_independent_in_one_vector_step():
    buf = NStepBuffer(2, 2, 1.0, transition_dtype(1))
    both = np.array([True, True])
    obs = np.array([[0], [100]], np.float32)
    buf.step(obs, np.array([0, 0]), np.array([1.0, 10.0]), obs + 1, ~both, ~both, both)
    out = buf.step(obs + 1, np.array([1, 1]), np.array([1.0, 10.0]), obs + 2,
                   np.array([False, True]), ~both, both)
    by_obs = {float(o[0]): r for o, r in zip(out["obs"], out["reward"], strict=True)}
    assert by_obs[0.0] == pytest.approx(2.0)  # copy 0: full 2-step window
    assert by_obs[100.0] == pytest.approx(20.0) and by_obs[101.0] == pytest.approx(10.0)
    assert len(out) == 3


def test_one_step_is_plain_q_learning():
    buf = NStepBuffer(1, 1, 0.99, transition_dtype(1))
    out = push(buf, 0, 2.0)
    assert out["reward"][0] == pytest.approx(2.0) and out["discount"][0] == pytest.approx(0.99)


def reference(rows, n: int, gamma: float) -> list[tuple]:
    """One copy's valid steps split into episodes, n-step transitions written out plainly."""
    out, episode = [], []
    for row in rows + [None]:
        if row is not None:
            episode.append(row)
        ended = row is not None and (row[4] or row[5])
        if not ended and row is not None:
            continue
        length = len(episode)
        for t in range(length):
            last = t + n - 1
            if last < length - 1 or (not ended and last <= length - 1):
                window, nxt, disc = episode[t:t + n], episode[last][3], gamma ** n
            elif ended:
                window, nxt = episode[t:], episode[-1][3]
                disc = 0.0 if episode[-1][4] else gamma ** len(window)
            else:
                continue
            ret = sum(gamma ** j * w[2] for j, w in enumerate(window))
            out.append((episode[t][0], episode[t][1], ret, nxt, disc))
        episode = []
    return out


@settings(max_examples=150, deadline=None)
@given(k=st.integers(1, 4), n=st.integers(1, 4), gamma=st.sampled_from([1.0, 0.9, 0.5]),
       ends=st.lists(st.lists(st.sampled_from("..........tT"), min_size=4, max_size=4),
                     min_size=1, max_size=40),
       seed=st.integers(0, 2**16))
def test_vector_buffer_equals_a_plain_per_copy_reference(k, n, gamma, ends, seed):
    """Any pattern of terminations (T), truncations (t) and reset steps over k copies, several
    ending in the same step: the buffer emits exactly the reference's transitions."""
    rng = np.random.default_rng(seed)
    buf = NStepBuffer(k, n, gamma, transition_dtype(1))
    prev_done = np.zeros(k, bool)
    got, valid_rows = [], [[] for _ in range(k)]
    for step, marks in enumerate(ends):
        marks = marks[:k]
        obs = np.array([[1000 * e + step] for e in range(k)], np.float32)
        nxt = obs + 0.5
        act = rng.integers(0, 3, k)
        rew = rng.integers(-3, 4, k).astype(np.float64)
        term = np.array([m == "T" for m in marks])
        trunc = np.array([m == "t" for m in marks])
        valid = ~prev_done
        out = buf.step(obs, act, rew, nxt, term, trunc, valid)
        got += [(float(r["obs"][0]), int(r["action"]), float(r["reward"]),
                 float(r["next_obs"][0]), float(r["discount"])) for r in out]
        for e in np.flatnonzero(valid):
            valid_rows[e].append((float(obs[e, 0]), int(act[e]), float(rew[e]),
                                  float(nxt[e, 0]), bool(term[e]), bool(trunc[e])))
        prev_done = valid & (term | trunc)
    want = [t for e in range(k) for t in reference(valid_rows[e], n, gamma)]
    assert len(got) == len(want)
    for g, w in zip(sorted(got), sorted(want), strict=True):
        assert g[:2] == w[:2] and g[3] == w[3]
        assert g[2] == pytest.approx(w[2], rel=1e-5, abs=1e-5)
        assert g[4] == pytest.approx(w[4], rel=1e-6)


def q_of(obs: np.ndarray) -> np.ndarray:
    """Deterministic Q-values for 3 actions, a function of the observation alone."""
    x = obs[:, 0].astype(np.float32)
    return np.stack([np.sin(x), np.cos(x), np.float32(0.3) * x], axis=1).astype(np.float32)


@settings(max_examples=100, deadline=None)
@given(k=st.integers(1, 4), n=st.integers(1, 4), gamma=st.sampled_from([1.0, 0.9, 0.5]),
       ends=st.lists(st.lists(st.sampled_from("........tT"), min_size=4, max_size=4),
                     min_size=1, max_size=30),
       no_q_steps=st.integers(0, 3), take_every=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_take_hands_out_steps_transitions_priced_by_the_next_push(
        k, n, gamma, ends, no_q_steps, take_every, seed):
    """push/take give exactly what step gives, one push later, with the priority
    |r + discount * max_a Q(s', a) - Q(s, a)| from the Q-values passed with the push that acted
    on s and the push that acted on s' (the obs following a step is the next step's obs); a
    batch holding any transition acted on without Q-values has no priorities."""
    rng = np.random.default_rng(seed)
    buf = NStepBuffer(k, n, gamma, transition_dtype(1), batch_steps=take_every)
    twin = NStepBuffer(k, n, gamma, transition_dtype(1))
    obs = rng.normal(size=(k, 1)).astype(np.float32)
    prev_done = np.zeros(k, bool)
    acted_with_q: dict[float, bool] = {}
    want, batches = [], []
    for step, marks in enumerate(ends + [[None] * 4]):
        q = q_of(obs) if step >= no_q_steps else None
        acted_with_q.update((float(o), q is not None) for o in obs[:, 0])
        nxt = rng.normal(size=(k, 1)).astype(np.float32)
        act = rng.integers(0, 3, k)
        rew = rng.integers(-3, 4, k).astype(np.float64)
        term = np.array([m == "T" for m in marks[:k]])
        trunc = np.array([m == "t" for m in marks[:k]])
        # the last push only prices the step before: every copy "resets", nothing is recorded
        valid = ~prev_done if marks[0] is not None else np.zeros(k, bool)
        want.append(twin.step(obs, act, rew, nxt, term, trunc, valid))
        buf.push(obs, act, rew, nxt, term, trunc, valid, q)
        if (step + 1) % take_every == 0 or marks[0] is None:
            taken = buf.take()
            if taken is not None:
                batches.append(taken)
        prev_done = valid & (term | trunc)
        obs = nxt
    assert buf.take() is None
    want_all = np.concatenate(want)
    got_all = np.concatenate([b for b, _ in batches]) if batches else want_all[:0]
    assert np.array_equal(got_all, want_all)
    for records, prios in batches:
        if not all(acted_with_q[float(o)] for o in records["obs"][:, 0]):
            assert prios is None
            continue
        q_sa = q_of(records["obs"])[np.arange(len(records)), records["action"]]
        target = records["reward"] + records["discount"] * q_of(records["next_obs"]).max(axis=1)
        assert prios is not None and prios.dtype == np.float32
        assert prios == pytest.approx(np.abs(target - q_sa), rel=1e-6, abs=1e-6)


def test_take_is_empty_until_a_later_push_prices_the_transitions():
    buf = NStepBuffer(1, 1, 0.5, transition_dtype(1))
    q = np.array([[1.0, 3.0]], np.float32)
    buf.push(np.array([[0.0]], np.float32), np.array([0]), np.array([2.0]),
             np.array([[1.0]], np.float32), F, F, T, q)
    assert buf.take() is None  # Q(s', .) comes with the next push
    buf.push(np.array([[1.0]], np.float32), np.array([1]), np.array([0.0]),
             np.array([[2.0]], np.float32), F, F, T, q * 2)
    records, prios = buf.take()
    assert len(records) == 1 and records["obs"][0, 0] == 0
    assert prios == pytest.approx([abs(2.0 + 0.5 * 6.0 - 1.0)])
    assert buf.take() is None
