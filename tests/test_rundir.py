"""Run directory, atomic writes and TensorBoard events (read back without TensorFlow)."""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from d3q_core.config import Config, ConfigError, build_config, to_dict
from d3q_core.storage import rundir as rundir_mod
from d3q_core.storage.atomic import DiskError, atomic_path, write_bytes_atomic, write_text_atomic
from d3q_core.storage.jsonsafe import json_safe
from d3q_core.storage.rundir import RunDir, RunDirError
from d3q_core.storage.tensorboard import TensorBoardLog

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- atomic writes ------------------------------------------------------------------------


def test_atomic_writes_replace_whole_files(tmp_path):
    target = tmp_path / "result.json"
    write_text_atomic(target, "one")
    write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two" and leftovers(tmp_path) == []
    with atomic_path(tmp_path / "arrays.npz") as tmp, open(tmp, "wb") as f:
        assert tmp.parent == tmp_path and tmp.name.startswith(".arrays.npz.")
        np.savez(f, x=np.arange(3))
    assert np.load(tmp_path / "arrays.npz")["x"].tolist() == [0, 1, 2]
    mode = (tmp_path / "arrays.npz").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # as any new file, not mkstemp's 0600


def test_a_failed_write_keeps_the_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "result.json"
    write_text_atomic(target, "previous")
    with pytest.raises(DiskError) as info, atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(info.value) == f"{target}: no space left on device"
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert target.read_text() == "previous" and leftovers(tmp_path) == []
    again = pickle.loads(pickle.dumps(info.value))  # crosses a multiprocessing queue intact
    assert str(again) == str(info.value) and again.errno == errno.ENOSPC
    with pytest.raises(KeyError), atomic_path(target):  # any other failure: same cleanup
        raise KeyError("x")
    assert target.read_text() == "previous" and leftovers(tmp_path) == []


def test_missing_directory_is_a_disk_error(tmp_path):
    with pytest.raises(DiskError, match=r"nowhere/x\.json: no such file or directory$"):
        write_text_atomic(tmp_path / "nowhere" / "x.json", "{}")


def test_a_real_file_size_limit(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: the write fails with EFBIG in a child."""
    script = textwrap.dedent(f"""
        import resource, sys
        from d3q_core.storage.atomic import DiskError, write_bytes_atomic
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_bytes_atomic({str(tmp_path / 'big.bin')!r}, b"x" * 100_000)
        except DiskError as exc:
            print(exc)
            sys.exit(3)
    """)
    (tmp_path / "big.bin").write_bytes(b"old")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip() == f"{tmp_path / 'big.bin'}: file too large"
    assert (tmp_path / "big.bin").read_bytes() == b"old" and leftovers(tmp_path) == []


# --- run directory ------------------------------------------------------------------------


def test_create_names_unique_sanitized_directories(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir_mod.time, "strftime", lambda fmt: "20260101-120000")
    root = tmp_path / "runs"
    first = RunDir.create(root, "ALE/Pong-v5")
    second = RunDir.create(root, "ALE/Pong-v5")
    third = RunDir.create(root, "ALE/Pong-v5")
    assert first.path == root / "20260101-120000-ALE_Pong-v5"
    assert second.path.name == "20260101-120000-ALE_Pong-v5-2"
    assert third.path.name == "20260101-120000-ALE_Pong-v5-3"
    for rd in (first, second, third):
        assert rd.checkpoints.is_dir() and rd.tb.is_dir()
        assert rd.config_path == rd.path / "config.toml"
        assert rd.result_path == rd.path / "result.json" and rd.log_path == rd.path / "log.txt"
        assert [p.name for p in rd.path.iterdir() if "probe" in p.name] == []


def test_real_timestamp_format(tmp_path):
    rd = RunDir.create(tmp_path, "CartPole-v1")
    stamp, _, rest = rd.path.name.partition("-")
    time_part, _, env = rest.partition("-")
    assert len(stamp) == 8 and stamp.isdigit() and len(time_part) == 6 and time_part.isdigit()
    assert env == "CartPole-v1"


def test_explicit_directory_may_exist(tmp_path):
    explicit = tmp_path / "mine"
    rd = RunDir.create(tmp_path / "ignored", "CartPole-v1", explicit=explicit)
    assert rd.path == explicit and rd.checkpoints.is_dir()
    assert RunDir.create(tmp_path, "CartPole-v1", explicit=explicit).path == explicit
    assert not (tmp_path / "ignored").exists()


def test_uncreatable_directories_fail_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for explicit in (blocker / "run", blocker):
        with pytest.raises(RunDirError) as info:
            RunDir.create(tmp_path, "CartPole-v1", explicit=explicit)
        text = str(info.value)
        assert text.startswith(f"{explicit}: cannot create run directory (") and "\n" not in text
    with pytest.raises(RunDirError, match="cannot create run directory"):
        RunDir.create(blocker, "CartPole-v1")


@pytest.mark.skipif(IS_ROOT, reason="root writes through permissions")
def test_unwritable_directory_fails(tmp_path):
    explicit = tmp_path / "ro"
    (explicit / "checkpoints").mkdir(parents=True)
    (explicit / "tb").mkdir()
    explicit.chmod(0o500)
    try:
        with pytest.raises(RunDirError, match="not writable"):
            RunDir.create(tmp_path, "CartPole-v1", explicit=explicit)
    finally:
        explicit.chmod(0o700)


def test_failed_write_probe_fails_even_as_root(tmp_path, monkeypatch):
    def refuse(self, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(RunDirError) as info:
        RunDir.create(tmp_path, "CartPole-v1", explicit=tmp_path / "run")
    assert str(info.value) == (f"{tmp_path / 'run'}: cannot create run directory "
                               "(not writable: permission denied)")


def test_storage_holds_the_checkpoints_and_the_run_directory_links_to_them(tmp_path):
    shared = tmp_path / "shared"
    a = RunDir.create(tmp_path, "CartPole-v1", explicit=tmp_path / "a", storage=shared)
    assert a.checkpoints.is_symlink() and a.checkpoints.resolve() == shared / "a" / "checkpoints"
    (a.checkpoints / "ckpt-1.npz").write_bytes(b"x")
    assert (shared / "a" / "checkpoints" / "ckpt-1.npz").read_bytes() == b"x"
    assert a.holds_a_run()
    # another run of the same name elsewhere gets a folder of its own there
    b = RunDir.create(tmp_path, "CartPole-v1", explicit=tmp_path / "elsewhere" / "a",
                      storage=shared)
    assert b.checkpoints.resolve() == shared / "a-2" / "checkpoints"
    assert not list(b.checkpoints.iterdir())
    a.write_config(Config())
    assert RunDir.open_existing(a.path).checkpoints.is_dir()
    (shared / "a" / "checkpoints" / "ckpt-1.npz").unlink()
    (shared / "a" / "checkpoints").rmdir()  # the storage is not mounted here
    with pytest.raises(RunDirError, match="cannot be reached"):
        RunDir.open_existing(a.path)


def test_a_storage_that_cannot_be_written_is_refused_before_the_run_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunDirError) as info:
        RunDir.create(tmp_path, "CartPole-v1", explicit=tmp_path / "run", storage=blocker)
    assert str(info.value).startswith(f"cluster.storage = '{blocker}': cannot create it")
    assert not (tmp_path / "run").exists()


def test_open_existing_needs_a_config(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        RunDir.open_existing(tmp_path / "nowhere")
    (tmp_path / "run").mkdir()
    with pytest.raises(RunDirError) as info:
        RunDir.open_existing(tmp_path / "run")
    assert str(info.value) == f"{tmp_path / 'run' / 'config.toml'}: missing; not a d3q run " \
                              "directory"


def test_config_round_trip(tmp_path):
    rd = RunDir.create(tmp_path, "CartPole-v1")
    config = build_config(None, ["learner.hidden=64,32", "stop.goal=450", "env.id=Acrobot-v1",
                                 "replay.alpha=0.5"])
    rd.write_config(config)
    again = RunDir.open_existing(rd.path).read_config()
    assert isinstance(again, Config) and to_dict(again) == to_dict(config)
    plain = build_config()  # stop.goal None is left out of the TOML and comes back None
    rd.write_config(plain)
    assert rd.read_config().stop.goal is None and leftovers(rd.path) == []


def test_bad_config_names_the_file_once(tmp_path):
    rd = RunDir.create(tmp_path, "CartPole-v1")
    rd.config_path.write_text("[learner\n")
    with pytest.raises(ConfigError) as info:
        rd.read_config()
    assert str(info.value).count(str(rd.config_path)) == 1 and "malformed" in str(info.value)
    rd.config_path.write_text("[learner]\nbatch_size = -3\n")
    with pytest.raises(ConfigError) as info:
        rd.read_config()
    assert str(info.value).startswith(f"{rd.config_path}: learner.batch_size")


def test_result_json(tmp_path):
    rd = RunDir.create(tmp_path, "CartPole-v1")
    rd.write_result({"zeta": 1, "alpha": float("nan"), "inf": float("inf"),
                     "np": np.float32(0.5), "npnan": np.float64("nan"), "arr": np.arange(2),
                     "nested": {"b": (1, float("-inf")), "a": [np.int64(3)]},
                     "path": rd.path})
    text = rd.result_path.read_text()
    assert text.endswith("\n") and "NaN" not in text and "Infinity" not in text
    assert text.index('"alpha"') < text.index('"zeta"') and '\n  "alpha": null' in text
    data = rd.read_result()
    assert data == {"zeta": 1, "alpha": None, "inf": None, "np": 0.5, "npnan": None,
                    "arr": [0, 1], "nested": {"a": [3], "b": [1, None]}, "path": str(rd.path)}
    assert json.loads(text) == data and leftovers(rd.path) == []
    rd.result_path.write_text("{half")
    with pytest.raises(RunDirError, match="result.json: unreadable"):
        rd.read_result()


def test_append_log(tmp_path):
    rd = RunDir.create(tmp_path, "CartPole-v1")
    rd.append_log("one")
    rd.append_log("two\n")
    assert rd.log_path.read_text() == "one\ntwo\n"  # flushed: visible at once
    RunDir(tmp_path / "gone").append_log("lost, never raised")


# --- TensorBoard --------------------------------------------------------------------------


def read_events(directory: Path) -> list:
    """Every Event in the directory's event files, from TFRecord framing:
    length (u64), its CRC (u32), the serialized Event, its CRC (u32)."""
    from tensorboardX.proto import event_pb2

    events = []
    for fn in sorted(directory.glob("events.out.tfevents.*")):
        data, pos = fn.read_bytes(), 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            events.append(event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length]))
            pos += 12 + length + 4
    return events


def test_tensorboard_events_appear_with_tags(tmp_path):
    rd = RunDir.create(tmp_path, "CartPole-v1")
    tb = TensorBoardLog(rd.tb)
    assert tb.enabled
    tb.scalar("eval/mean_return", 123.5, step=4096)
    tb.scalar("learner/loss", float("nan"), step=4096)  # skipped, not an error
    tb.text("config", "[env]\nid = CartPole-v1", step=0)
    tb.flush()
    tb.close()  # tensorboardX writes from a thread: close, not flush, means "on disk"
    scalars = {(v.tag, e.step): v.simple_value
               for e in read_events(rd.tb) for v in e.summary.value}
    assert scalars[("eval/mean_return", 4096)] == 123.5
    assert not any(tag == "learner/loss" for tag, _ in scalars)
    assert any(tag.startswith("config") for tag, _ in scalars)
    tb.close()  # twice is harmless
    tb.scalar("after/close", 1.0, 1)  # a no-op, not an error


def test_every_curve_is_written_against_learner_samples_and_env_steps(tmp_path):
    tb = TensorBoardLog(tmp_path / "tb")
    tb.scalars({"eval/mean_return": 200.0, "train/episode_return": 50.0},
               learner_samples=8192, env_steps=2048)
    tb.close()
    scalars = {(v.tag, e.step): v.simple_value
               for e in read_events(tmp_path / "tb") for v in e.summary.value}
    assert scalars == {("eval/mean_return", 8192): 200.0,
                       ("by_env_steps/eval/mean_return", 2048): 200.0,
                       ("train/episode_return", 8192): 50.0,
                       ("by_env_steps/train/episode_return", 2048): 50.0}


def test_disabled_tensorboard_writes_nothing(tmp_path):
    tb = TensorBoardLog(tmp_path / "tb", enabled=False)
    tb.scalar("x", 1.0, 1)
    tb.text("t", "x")
    tb.flush()
    tb.close()
    assert not tb.enabled and not (tmp_path / "tb").exists()


def test_no_tensorflow_in_the_writing_process(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from d3q_core.storage.rundir import RunDir
        from d3q_core.storage.tensorboard import TensorBoardLog
        rd = RunDir.create({str(tmp_path)!r}, "CartPole-v1")
        tb = TensorBoardLog(rd.tb)
        tb.scalar("a", 1.0, 1)
        tb.text("t", "hello")
        tb.close()
        heavy = [m for m in ("tensorflow", "keras", "tensorboard") if m in sys.modules]
        print(heavy, len(list(rd.tb.iterdir())))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] 1"


def test_nan_check_helper():
    assert json_safe({"x": [math.nan]}) == {"x": [None]}


def test_the_training_return_is_a_tensorboard_curve():
    from d3q_core.roles.messages import SimulatorStats
    from d3q_core.run.runstate import RunState

    st = RunState("CartPole-v1", "r", 475.0, 0.0)
    assert "train/episode_return" not in st.tensorboard_scalars()  # no episode ended yet
    for i, ret in enumerate((20.0, None, 40.0)):
        st.latest[("simulator", i)] = SimulatorStats(1.0, ret, 0.4, 0.1, 0.4, 1, None)
    assert st.tensorboard_scalars()["train/episode_return"] == 30.0  # the simulators' mean
