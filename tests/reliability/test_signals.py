"""SIGINT, SIGTERM and SIGHUP, to d3q-tui alone or to its whole process group (as `timeout`,
systemd, `docker stop` and a closed terminal send them): one graceful stop led by the
orchestrator, with a final checkpoint, result.json "interrupted", exit 130 and no process
left; a second signal stops at once, still leaving no process behind."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from d3q_core.storage.checkpoint import read_meta
from tests.helpers import TINY, Watched


def start_training(tmp_path, own_group: bool = False):
    run_dir = tmp_path / "run"
    w = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000",
                 "--set", "learner.checkpoint_seconds=3600"], own_group=own_group)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # until the learner has trained a while
        w.poll_children()
        log = run_dir / "log.txt"
        if log.is_file() and "new best eval" in log.read_text(errors="replace"):
            break
        time.sleep(0.2)
    else:
        w.kill_all()
        pytest.fail("no evaluation within 90 s")
    return w, run_dir


def final_checkpoints(run_dir) -> list[str]:
    return [p.name for p in sorted((run_dir / "checkpoints").glob("ckpt-*.npz"))
            if read_meta(p).get("reason") == "final"]


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("sig", "group"), [
    (signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGHUP, False),
    (signal.SIGTERM, True), (signal.SIGHUP, True), (signal.SIGINT, True),
])
def test_one_signal_stops_gracefully(tmp_path, sig, group, report):
    w, run_dir = start_training(tmp_path, own_group=group)
    assert final_checkpoints(run_dir) == []  # no periodic one either: an hour apart
    t0 = time.monotonic()
    if group:
        os.killpg(w.proc.pid, sig)
    else:
        w.proc.send_signal(sig)
    code, out, err = w.wait(timeout=30)
    took = time.monotonic() - t0
    assert code == 130, (out, err)
    assert w.survivors() == []
    result = json.loads((run_dir / "result.json").read_text())
    assert result["stop_reason"] == "interrupted" and result["exit_code"] == 130
    finals = final_checkpoints(run_dir)
    assert len(finals) == 1 and result["last_checkpoint"].endswith(finals[0])
    report(f"{sig.name} to {'the process group' if group else 'd3q-tui'}", took, exit=code,
           stop_reason=result["stop_reason"], final_checkpoint=finals[0], processes_left=0)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("group", [False, True])
def test_a_second_signal_stops_at_once(tmp_path, group, report):
    w, run_dir = start_training(tmp_path, own_group=group)
    send = (lambda s: os.killpg(w.proc.pid, s)) if group else w.proc.send_signal
    send(signal.SIGTERM)
    time.sleep(0.05)
    send(signal.SIGINT)
    t0 = time.monotonic()
    code, out, err = w.wait(timeout=30)
    took = time.monotonic() - t0
    assert code == 130, (out, err)
    assert took < 6.0
    assert w.survivors() == []
    assert json.loads((run_dir / "result.json").read_text())["stop_reason"] == "interrupted"
    report(f"SIGTERM then SIGINT{' to the group' if group else ''}", took, exit=code,
           stopped_at_once=True, processes_left=0)
