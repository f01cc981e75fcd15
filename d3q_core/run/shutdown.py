"""The ordered stop of a run's roles: the learner's final checkpoint first, then the replay's
snapshot, then everyone, each step bounded in time, stragglers killed. The
messages read meanwhile still reach the run through `drain`."""

from __future__ import annotations

import time
from collections.abc import Callable

from d3q_core.roles.messages import Stop
from d3q_core.run.backend import Backend
from d3q_core.run.supervision import Supervisor

LEARNER_SECONDS = 15.0  # the final checkpoint
REPLAY_SECONDS = 15.0  # the replay snapshot, plus its size at SNAPSHOT_BYTES_PER_SECOND
# A quarter of the 276 MB/s measured writing a full 1M Atari frame memory here, fsync
# included (7.1 GB in 25.7 s; BENCHMARKS.md, "Pixels"): a slower disk or a loaded machine
# must not cut the snapshot short
SNAPSHOT_BYTES_PER_SECOND = 70e6
EXIT_SECONDS, ABORT_SECONDS = 5.0, 0.5  # the rest, after stop_all


def snapshot_seconds(nbytes: int) -> float:
    """How long a replay snapshot of a memory of `nbytes` may take."""
    return REPLAY_SECONDS + nbytes / SNAPSHOT_BYTES_PER_SECOND


def stop_roles(backend: Backend, roles: Supervisor, drain: Callable[[float], None], *,
               learner_stop: Stop | None, replay_pending: Callable[[], set[int]] | None,
               abort: bool, replay_seconds: float = REPLAY_SECONDS) -> None:
    """`learner_stop`: the command to send the learner (None: it was told already);
    `replay_pending`: the replay shards still writing a snapshot (None: no snapshots),
    waited for while alive, at most `replay_seconds`;
    `abort`: a second Ctrl-C, no final checkpoint, everyone told at once."""
    flags = backend.flags
    flags.stop_sims.set()
    if learner_stop is not None and roles.alive("learner"):
        backend.send("learner", learner_stop)
    if abort:
        flags.stop_all.set()
    saving = learner_stop is None or learner_stop.final_checkpoint  # told at the goal: saves
    _wait(lambda: roles.alive("learner"), LEARNER_SECONDS if saving else EXIT_SECONDS, drain,
          0.05)
    if replay_pending is not None and not abort:
        drain(0.1)  # the final checkpoint's message, if still unread: its snapshot is asked for
        _wait(lambda: any(roles.alive("replay", i) for i in replay_pending()), replay_seconds,
              drain, 0.05)
    # a learner still there was told to stop and given its time already (hung: a stall, a
    # SIGSTOP): the others are waited for, it is not waited for twice
    hung = {"learner"} if roles.alive("learner") else set()
    flags.stop_all.set()
    _wait(lambda: any(c.handle.is_alive() for c in roles if c.role not in hung),
          ABORT_SECONDS if abort else EXIT_SECONDS, drain, 0.02)
    # stragglers: roles ignore SIGTERM (the orchestrator leads every stop), so they are killed;
    # every file they write is written atomically, so nothing is left half-written
    for c in roles:
        if c.handle.is_alive():
            c.handle.kill()
    for c in roles:
        c.handle.join(timeout=2.0)
        if c.state != "failed":
            c.state = "exited"


def _wait(condition: Callable[[], bool], seconds: float, drain: Callable[[float], None],
          step: float) -> None:
    deadline = time.monotonic() + seconds
    while condition() and time.monotonic() < deadline:
        drain(step)
