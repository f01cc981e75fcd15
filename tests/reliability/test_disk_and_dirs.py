"""A disk that fills up in the middle of a run, and run directories: another run's directory
is refused, two runs never write one directory at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from tests.helpers import TINY, Watched
from tests.reliability.test_faults import newest_file_loads, wait_for


def can_mount() -> str | None:
    """None if this machine lets the test mount a tmpfs, else why not."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        return "mounting a tmpfs needs root and mount(8)"
    probe = f"/tmp/d3q-mount-probe-{uuid.uuid4().hex[:8]}"
    os.makedirs(probe)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", probe],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", probe], capture_output=True)
        return None if ok else "this machine refuses to mount a tmpfs"
    finally:
        os.rmdir(probe)


@pytest.fixture
def small_disk(tmp_path):
    why = can_mount()
    if why:
        pytest.skip(why)
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24M", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.timeout(180)
def test_a_disk_filling_up_mid_run_ends_it_within_seconds(small_disk, report):
    run_dir = small_disk / "run"
    w = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000"])
    wait_for(lambda: list((run_dir / "checkpoints").glob("ckpt-*.npz"))
             and "new best eval" in (run_dir / "log.txt").read_text(errors="replace"),
             90, w, "training with a checkpoint")
    fill = subprocess.run(["dd", "if=/dev/zero", f"of={small_disk}/filler", "bs=1M",
                           "count=64"], capture_output=True)
    assert fill.returncode != 0  # dd stopped at the full disk
    t0 = time.monotonic()
    code, out, err = w.wait(timeout=60)
    took = time.monotonic() - t0
    assert code == 3, (out, err)
    assert took < 20.0
    assert w.survivors() == []
    newest = newest_file_loads(run_dir)  # the newest complete checkpoint is whole
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    os.remove(small_disk / "filler")  # room for the check below; the run is over
    # whichever write met the full disk first (a checkpoint, TensorBoard events, the log),
    # the reason names the file and the cause
    if (run_dir / "result.json").is_file():
        error = json.loads((run_dir / "result.json").read_text())["error"]
    else:  # result.json could not be written either: the summary on the terminal says it
        flat = "".join(out.replace("│", "").split())
        error = flat[flat.index("error", flat.index("d3qrunsummary")):]
    assert "nospaceleftondevice" in error.replace(" ", "") and \
        str(small_disk).replace(" ", "") in error.replace(" ", ""), out
    report("the run's disk fills up mid-run (24 MiB tmpfs, dd)", took, exit=code,
           error="no space left on device, naming the file", newest_checkpoint_loads=newest,
           processes_left=0)


@pytest.mark.timeout(120)
def test_a_directory_holding_another_run_is_refused_unless_resumed(tmp_path, report):
    run_dir = tmp_path / "run"
    first = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000",
                     "--set", "stop.max_learner_samples=4000"])
    assert first.wait(timeout=90)[0] == 1
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    second = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY])
    t0 = time.monotonic()
    code, _, err = second.wait(timeout=60)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--resume" in err, err
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before  # untouched
    report("--run-dir of an existing run", time.monotonic() - t0, exit=code,
           error=err.strip().replace(str(tmp_path), "TMP"), checkpoints_untouched=True)


@pytest.mark.timeout(180)
def test_two_runs_never_write_one_directory_at_once(tmp_path, report):
    run_dir = tmp_path / "run"
    first = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000"])
    wait_for(lambda: list((run_dir / "checkpoints").glob("ckpt-*.npz")), 90, first,
             "a checkpoint")
    second = Watched(["--no-ui", "--resume", str(run_dir)])
    t0 = time.monotonic()
    code, _, err = second.wait(timeout=60)
    took = time.monotonic() - t0
    first.proc.send_signal(signal.SIGINT)
    assert first.wait(timeout=60)[0] == 130
    assert code == 2 and "in use by another d3q run" in err, err
    assert first.survivors() == [] and second.survivors() == []
    third = Watched(["--no-ui", "--resume", str(run_dir), "--set", "stop.max_seconds=1"])
    assert third.wait(timeout=90)[0] == 1  # the lock went with the first run
    report("--resume of a run that is still running", took, exit=code,
           error="TMP/run: in use by another d3q run (pid N)", resumable_after=True)
