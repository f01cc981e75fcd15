"""SIGINT and SIGTERM: a graceful stop with a final checkpoint, exit code 130, no process
left; a second SIGINT stops at once, still leaving no process behind."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.helpers import TINY, Watched


def start_training(tmp_path):
    run_dir = tmp_path / "run"
    w = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000"])
    deadline = time.monotonic() + 90
    # wait until the learner has trained a little (a periodic checkpoint exists)
    while time.monotonic() < deadline:
        w.poll_children()
        if list((run_dir / "checkpoints").glob("ckpt-*.npz")):
            break
        time.sleep(0.2)
    else:
        w.kill_all()
        pytest.fail("no checkpoint within 90 s")
    return w, run_dir


@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_one_signal_stops_gracefully(tmp_path, sig, report):
    w, run_dir = start_training(tmp_path)
    before = {p.name for p in (run_dir / "checkpoints").glob("ckpt-*.npz")}
    t0 = time.monotonic()
    w.proc.send_signal(sig)
    code, out, err = w.wait(timeout=30)
    took = time.monotonic() - t0
    assert code == 130, (out, err)
    assert took < 10.0
    assert w.survivors() == []
    result = json.loads((run_dir / "result.json").read_text())
    assert result["stop_reason"] == "interrupted" and result["solved"] is False
    after = {p.name for p in (run_dir / "checkpoints").glob("ckpt-*.npz")}
    assert after - before or "final" in (run_dir / "log.txt").read_text()
    report(sig.name, "graceful stop: final checkpoint, result.json \"interrupted\", exit 130, "
           "no process left", took)


@pytest.mark.timeout(180)
def test_second_sigint_stops_at_once(tmp_path, report):
    w, run_dir = start_training(tmp_path)
    w.proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    w.proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    code, out, err = w.wait(timeout=30)
    took = time.monotonic() - t0
    assert code == 130, (out, err)
    assert took < 6.0
    assert w.survivors() == []
    report("SIGINT twice", "immediate stop, exit 130, no process left", took)
