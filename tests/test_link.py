"""The replay <-> learner link: batches and answers arrive byte-exact, the replay never has
more than `depth` batches unanswered and never blocks writing them, and either side's death
ends the other's reads and writes instead of hanging them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from d3q_core.algo.transitions import transition_dtype
from d3q_core.backends.local.inbox import ExperienceInbox, InboxAddress
from d3q_core.backends.local.link import BatchReceiver, BatchSender, SampleLink
from d3q_core.backends.local.process import spawn_context

DTYPE = transition_dtype(4)


def batch(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    records = np.zeros(rows, DTYPE)
    records["obs"] = rng.normal(size=(rows, 4))
    records["next_obs"] = rng.normal(size=(rows, 4))
    records["action"] = rng.integers(0, 2, rows)
    records["reward"] = rng.random(rows)
    records["discount"] = 0.99
    return records, rng.integers(0, 2**40, rows), rng.random(rows).astype(np.float32)


@pytest.fixture
def link():
    link = SampleLink.new(spawn_context())
    yield link
    link.close()


def test_batches_and_answers_round_trip_exactly(link):
    sender = BatchSender(link, DTYPE, depth=4)
    sender.configure(512)
    receiver = BatchReceiver(link, DTYPE, 512)
    sent = [batch(512, seed) for seed in range(3)]
    for b in sent:
        assert sender.send(*b)
    assert sender.outstanding == 3
    for records, indices, weights in sent:
        got = receiver.get(timeout=1.0)
        assert got is not None
        assert got[0].tobytes() == records.tobytes()
        np.testing.assert_array_equal(got[1], indices)
        np.testing.assert_array_equal(got[2], weights)
        receiver.answer(got[1], np.abs(got[2] - 0.5))
    answers = sender.answers()
    assert len(answers) == 3 and sender.outstanding == 0
    for (idx, td), (_, indices, weights) in zip(answers, sent, strict=True):
        np.testing.assert_array_equal(idx, indices)
        np.testing.assert_array_equal(td, np.abs(weights - 0.5))
    assert receiver.get(timeout=0.01) is None  # nothing more in flight


def test_depth_bounds_unanswered_batches_and_their_writes_never_block(link):
    sender = BatchSender(link, DTYPE, depth=4)
    sender.configure(512)  # 28 KB a batch: four of them exceed a default 64 KB pipe
    assert sender.depth == 4  # the pipe was grown to hold them (Linux)
    b = batch(512, 0)

    def fill():
        while sender.has_room():
            sender.send(*b)

    writer = threading.Thread(target=fill, daemon=True)
    writer.start()
    writer.join(timeout=5)
    assert not writer.is_alive(), "a write blocked with no reader"
    assert sender.outstanding == 4 and not sender.has_room()
    receiver = BatchReceiver(link, DTYPE, 512)
    got = receiver.get(timeout=1.0)
    receiver.answer(got[1], got[2])
    deadline = time.monotonic() + 5
    while not sender.answers():
        assert time.monotonic() < deadline
    assert sender.outstanding == 3 and sender.has_room()


def test_nothing_is_sent_before_the_batch_size_is_known_and_a_wrong_size_is_refused(link):
    sender = BatchSender(link, DTYPE, depth=2)
    assert not sender.has_room()  # the learner has not said its batch yet
    sender.configure(64)
    with pytest.raises(ValueError, match="64"):
        sender.send(*batch(32, 0))


def test_the_learner_gone_breaks_the_sender_and_the_replay_gone_ends_the_receiver():
    ctx = spawn_context()
    link = SampleLink.new(ctx)
    sender = BatchSender(link, DTYPE, depth=2)
    sender.configure(64)
    receiver = BatchReceiver(link, DTYPE, 64)
    link.batches_in.close()  # the learner's ends close: it died
    link.answers_out.close()
    assert sender.send(*batch(64, 0)) is False and sender.broken
    assert not sender.has_room()
    link.batches_out.close()  # the replay's ends too
    link.answers_in.close()
    with pytest.raises((EOFError, OSError)):
        receiver.get(timeout=1.0)

    link = SampleLink.new(ctx)  # the replay dies while the learner answers
    receiver = BatchReceiver(link, DTYPE, 64)
    link.answers_in.close()
    with pytest.raises(OSError):
        receiver.answer(np.arange(64), np.ones(64, np.float32))
    link.close()


def test_the_replay_wakes_on_an_answer_while_it_waits_for_simulators(link):
    inbox = ExperienceInbox(InboxAddress.new())
    try:
        link.answers_out.send_bytes(b"x" * 12)
        t0 = time.monotonic()
        wake = BatchSender(link, DTYPE, 1)
        assert inbox.receive(timeout=5.0, wake=wake) is False  # not a message
        assert time.monotonic() - t0 < 1.0
        assert link.answers_in.poll()  # left unread for the sender
    finally:
        inbox.close()


def _learner_that_leaves(link: SampleLink) -> None:
    link.keep_learner_ends()  # as the learner's ports do, then it is gone


def test_a_replay_process_sees_its_write_fail_once_the_learner_process_has_gone():
    """Each process is handed all four ends: the replay must not keep the learner's, or its
    write into a learner that has left blocks (a batch bigger than the pipe) or vanishes."""
    ctx = spawn_context()
    link = SampleLink.new(ctx)
    learner = ctx.Process(target=_learner_that_leaves, args=(link,))
    learner.start()
    learner.join(timeout=60)
    assert learner.exitcode == 0
    sender = BatchSender(link.keep_replay_ends(), DTYPE, depth=1)
    sender.configure(200_000)  # 11 MB: more than an unprivileged pipe holds
    sent: dict = {}
    t = threading.Thread(target=lambda: sent.update(ok=sender.send(*batch(200_000, 0))),
                         daemon=True)
    t.start()
    t.join(timeout=10)
    assert sent == {"ok": False} and sender.broken
    link.close()
