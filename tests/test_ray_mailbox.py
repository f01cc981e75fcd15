"""A role actor's mailbox (no Ray needed): an experience call returns True only once its
batches were stored, False when the role ended first."""

from __future__ import annotations

import threading

from d3q_core.backends.ray.data import ExperienceMailbox
from d3q_core.backends.ray.mailbox import EXPERIENCE, Mailbox


def _deliver_in_thread(mailbox: Mailbox, payload) -> tuple[threading.Thread, dict]:
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(ok=mailbox.deliver(EXPERIENCE, payload)))
    t.start()
    return t, out


def _first_of_two_stored() -> tuple[ExperienceMailbox, threading.Thread, dict]:
    """A call of two batches delivered, the role has stored the first."""
    mailbox = Mailbox()
    inbox = ExperienceMailbox(mailbox)
    t, out = _deliver_in_thread(mailbox, ["a", "b"])
    while inbox.peek() is None:
        mailbox.wait(0.05)
    inbox.done()
    return inbox, t, out


def test_an_experience_call_returns_true_once_its_batches_are_stored():
    inbox, t, out = _first_of_two_stored()
    t.join(timeout=0.3)
    assert t.is_alive()  # one of its two batches stored: the caller still waits
    assert inbox.peek() == "b"
    inbox.done()
    t.join(timeout=5)
    assert out == {"ok": True}


def test_an_experience_call_the_role_never_stored_returns_false_when_it_ends():
    mailbox = Mailbox()
    t, out = _deliver_in_thread(mailbox, ["a"])
    while mailbox.pending(EXPERIENCE) == 0:
        mailbox.wait(0.05)
    mailbox.close()  # the role ended with the call still queued
    t.join(timeout=5)
    assert out == {"ok": False}
    assert mailbox.deliver(EXPERIENCE, ["late"]) is False


def test_a_call_half_stored_when_the_role_ends_is_not_counted_as_stored():
    inbox, t, out = _first_of_two_stored()
    inbox.close()
    t.join(timeout=5)
    assert out == {"ok": False}
