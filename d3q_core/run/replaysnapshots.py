"""The replay memory's snapshots beside the checkpoints (`replay.snapshot`): a file per
shard, asked for after each checkpoint, restored from on resume, and the time they may take.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from d3q_core.algo.framememory import FrameLayout
from d3q_core.config import Config
from d3q_core.roles.messages import Command, SaveReplay
from d3q_core.run.resources import check_replay_snapshot, replay_snapshot_paths
from d3q_core.run.shutdown import snapshot_seconds
from d3q_core.snapshot import role_name


class ReplaySnapshots:
    def __init__(self, config: Config, checkpoints: Path, nbytes: int):
        """`checkpoints`: the folder the replay writes to; `nbytes`: the memory's size (all
        shards), which bounds how long a snapshot may take."""
        self.config = config
        self.enabled = config.replay.snapshot
        self.paths = replay_snapshot_paths(checkpoints, config.replay.shards)
        self.seconds = snapshot_seconds(nbytes)
        self.every = config.replay.snapshot_seconds
        self.partial = ""  # the snapshots found, when only some shards had one
        self._unsaved: set[int] = set()  # shards asked for a snapshot, not yet saved
        self._since: float | None = None  # when they were asked
        self._number = 0  # of the last request
        self._asked = time.monotonic()  # the last request (the first waits a period too)

    def restore(self, layout: FrameLayout | None, n_simulators: int) -> list[Path] | None:
        """Each shard's snapshot to resume from, each checked against the settings
        (ConfigError naming the file); None if there are none, or only some (`partial`
        says which: the memories then start empty, all alike)."""
        present = [p for p in self.paths if p.is_file()]
        if len(present) < len(self.paths):
            self.partial = ", ".join(p.name for p in present)
            return None
        for i, path in enumerate(present):
            check_replay_snapshot(path, self.config, layout, n_simulators, i)
        return present

    def request(self, send: Callable[[str, Command], object], final: bool = False) -> None:
        """After a checkpoint: every shard saves its memory, at most every `replay.
        snapshot_seconds` and never while the last request is still being written (a
        snapshot can outlast the checkpoint period); the final checkpoint's always (its
        memory is the newest)."""
        now = time.monotonic()
        if not final and (self._unsaved or now - self._asked < self.every):
            return
        self._number += 1
        self._unsaved = set(range(len(self.paths)))
        self._since = self._asked = now
        for i, path in enumerate(self.paths):
            send(role_name("replay", i), SaveReplay(str(path), self._number))

    def saved(self, shard: int, number: int) -> None:
        """A shard is done with request `number` (saved or failed); an earlier request's
        answer does not count for this one."""
        if number == self._number:
            self._unsaved.discard(shard)
            if not self._unsaved:
                self._since = None

    def pending(self) -> set[int]:
        """The shards still writing the last snapshot asked for."""
        return set(self._unsaved)

    def saving(self, now: float) -> bool:
        """A shard is writing its snapshot (the learner gets no batches from it meanwhile:
        no stall), for at most as long as one of this size may take."""
        return self._since is not None and now - self._since < self.seconds
