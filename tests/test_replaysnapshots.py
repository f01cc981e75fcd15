"""The replay's snapshots as the run asks for them: one file per shard, an answer counted
only for the request it answers, no second request while one is written (but the final
checkpoint's), and the shards still writing."""

from __future__ import annotations

from d3q_core.config import build_config
from d3q_core.roles.messages import SaveReplay
from d3q_core.run.replaysnapshots import ReplaySnapshots


def snapshots(tmp_path, shards: int = 2, every: float = 1e-9) -> tuple[ReplaySnapshots, list]:
    cfg = build_config(None, [f"replay.shards={shards}", "cluster.backend=ray",
                              "replay.snapshot=true", f"replay.snapshot_seconds={every}"])
    return ReplaySnapshots(cfg, tmp_path, nbytes=10**9), []


def test_every_shard_is_asked_and_waited_for(tmp_path):
    snaps, sent = snapshots(tmp_path)
    snaps.request(lambda role, cmd: sent.append((role, cmd)))
    assert sent == [("replay", SaveReplay(str(tmp_path / "replay.npz"), 1)),
                    ("replay 1", SaveReplay(str(tmp_path / "replay-1.npz"), 1))]
    assert snaps.pending() == {0, 1}
    snaps.saved(1, 1)
    assert snaps.pending() == {0}
    snaps.saved(0, 1)
    assert snaps.pending() == set()


def test_an_answer_to_an_earlier_request_does_not_count(tmp_path):
    snaps, sent = snapshots(tmp_path)
    send = lambda role, cmd: sent.append(cmd)  # noqa: E731
    snaps.request(send)
    snaps.request(send)  # a checkpoint while the first is written: skipped
    assert [c.number for c in sent] == [1, 1]
    snaps.request(send, final=True)  # the final checkpoint's memory is newer: asked anyway
    assert [c.number for c in sent] == [1, 1, 2, 2]
    snaps.saved(0, 1)
    snaps.saved(1, 1)  # the first request's answers
    assert snaps.pending() == {0, 1}
    snaps.saved(0, 2)
    snaps.saved(1, 2)
    assert snaps.pending() == set()


def test_the_stall_watch_is_off_only_while_a_snapshot_may_take(tmp_path):
    import time

    snaps, _ = snapshots(tmp_path)
    snaps.request(lambda role, cmd: None)
    now = time.monotonic()
    assert snaps.saving(now) and not snaps.saving(now + snaps.seconds + 1)
    assert snaps.seconds > 15.0 + 1e9 / 200e6  # 1 GB takes longer than 15 s of allowance
    snaps.saved(0, 1)
    snaps.saved(1, 1)
    assert not snaps.saving(now)


def test_periodic_snapshots_wait_their_period_but_the_final_one_does_not(tmp_path):
    snaps, sent = snapshots(tmp_path, shards=1, every=600.0)
    send = lambda role, cmd: sent.append(cmd.number)  # noqa: E731
    snaps.request(send)  # a checkpoint 30 s into the run: no snapshot yet
    assert sent == []
    snaps.request(send, final=True)
    assert sent == [1]
    snaps.saved(0, 1)
    snaps.request(send)  # right after: the period starts again
    assert sent == [1]
