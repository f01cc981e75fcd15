"""What a role actor receives from its peers' calls, for its role's ports to take.

Each delivery is one actor call on one of the actor's threads. An experience call returns
only once the replay has stored every batch it carried, so a simulator's unresolved calls
are its credits: at most `replay.queue_batches` in flight, as over the local socket. Sample
batches and priority answers are bounded by their sender (`replay.prefetch`) and return at
once. Any delivery wakes the role if it sleeps waiting for work.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

EXPERIENCE, SAMPLES, ANSWERS = "experience", "samples", "answers"


class Receipt:
    """An experience call's wait: `set` once the role has stored its last batch, released
    by `discard` when the role ended first (its caller must not count it as stored)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.stored = False

    def set(self) -> None:
        self.stored = True
        self._event.set()

    def discard(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


class Mailbox:
    def __init__(self) -> None:
        self.activity = threading.Event()  # something arrived since the role last looked
        self._lock = threading.Lock()
        self._queues: dict[str, deque] = {EXPERIENCE: deque(), SAMPLES: deque(),
                                          ANSWERS: deque()}
        self._closed = False

    def deliver(self, channel: str, payload: Any) -> bool:
        """On the caller's thread; an experience waits until stored. False once closed
        (for an experience: unless it was stored before)."""
        done = Receipt() if channel == EXPERIENCE else None
        with self._lock:
            if self._closed:
                return False
            self._queues[channel].append((payload, done))
        self.activity.set()
        if done is not None:
            while not done.wait(0.5):
                if self._closed:
                    return False
            return done.stored
        return True

    def take(self, channel: str) -> tuple[Any, Receipt | None] | None:
        with self._lock:
            queue = self._queues[channel]
            return queue.popleft() if queue else None

    def pending(self, channel: str) -> int:
        return len(self._queues[channel])

    def wait(self, timeout: float) -> None:
        """Until something arrives or `timeout` passes."""
        if self.activity.wait(timeout):
            self.activity.clear()

    def close(self) -> None:
        """The role has ended: waiting callers return False, later ones at once."""
        with self._lock:
            self._closed = True
            for queue in self._queues.values():
                for _, done in queue:
                    if done is not None:
                        done.discard()
                queue.clear()
        self.activity.set()
