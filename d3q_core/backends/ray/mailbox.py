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


class Mailbox:
    def __init__(self) -> None:
        self.activity = threading.Event()  # something arrived since the role last looked
        self._lock = threading.Lock()
        self._queues: dict[str, deque] = {EXPERIENCE: deque(), SAMPLES: deque(),
                                          ANSWERS: deque()}
        self._closed = False

    def deliver(self, channel: str, payload: Any) -> bool:
        """On the caller's thread; an experience waits until stored. False once closed."""
        done = threading.Event() if channel == EXPERIENCE else None
        with self._lock:
            if self._closed:
                return False
            self._queues[channel].append((payload, done))
        self.activity.set()
        if done is not None:
            while not done.wait(0.5):
                if self._closed:
                    return False
        return True

    def take(self, channel: str) -> tuple[Any, threading.Event | None] | None:
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
                        done.set()
                queue.clear()
        self.activity.set()
