"""Checkpoints: pickle-free round trip, pruning, corrupt files refused by name, newest-loadable
lookup, and a writer killed with SIGKILL never costing the previous checkpoint."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from d3q_core.algo.qnet import QNetSpec, init_weights
from d3q_core.storage.atomic import HOST_TAG, DiskError
from d3q_core.storage.checkpoint import (
    FORMAT,
    CheckpointError,
    check_compatible,
    load_checkpoint,
    newest_checkpoint,
    read_meta,
    read_policy,
    save_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]
SPEC = QNetSpec(4, 2, (64, 64), True)


def meta_for(samples: int, env_id: str = "CartPole-v1", spec: QNetSpec = SPEC, **extra) -> dict:
    return {"version": samples // 100, "learner_samples": samples, "env_steps": samples // 8,
            "learner_steps": samples // 128, "env_id": env_id, "spec": spec.to_dict(), **extra}


def arrays_for(spec: QNetSpec = SPEC, seed: int = 0) -> dict[str, np.ndarray]:
    online = init_weights(spec, np.random.default_rng(seed))
    return {"online": online, "target": online * 0.5, "step": np.array(7, np.int64),
            "adam/m": np.zeros(spec.n_params, np.float32)}


def one_line(exc: BaseException, path: Path) -> str:
    text = str(exc)
    assert text.startswith(f"{path}: ") and "\n" not in text, text
    return text


def test_round_trip(tmp_path):
    arrays = arrays_for()
    evals = [{"learner_samples": 2000, "mean": 21.5}, {"learner_samples": 4000, "mean": None}]
    path = save_checkpoint(tmp_path / "checkpoints", arrays,
                           meta_for(1234, evals=evals, epsilon=np.array([0.4, 0.1]),
                                    env_steps=np.int64(99)))
    assert path == tmp_path / "checkpoints" / "ckpt-000000001234.npz"
    loaded, meta = load_checkpoint(path)
    assert set(loaded) == set(arrays)
    for k, v in arrays.items():
        assert loaded[k].dtype == v.dtype and np.array_equal(loaded[k], v)
    assert meta["format"] == FORMAT and meta["evals"] == evals and meta["epsilon"] == [0.4, 0.1]
    assert meta["env_steps"] == 99 and isinstance(meta["env_steps"], int)
    assert meta["learner_samples"] == 1234 and QNetSpec.from_dict(meta["spec"]) == SPEC
    with np.load(path, allow_pickle=False) as raw:  # plain NumPy reads it, no pickle
        assert raw["__meta__"].ndim == 0 and raw["__meta__"].dtype.kind == "U"
        assert json.loads(str(raw["__meta__"]))["env_id"] == "CartPole-v1"
    assert read_meta(path, verify=True) == meta
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp left behind


def test_read_policy(tmp_path):
    arrays = arrays_for()
    path = save_checkpoint(tmp_path, arrays, meta_for(10))
    spec, flat, meta = read_policy(path)
    assert spec == SPEC and flat.dtype == np.float32 and np.array_equal(flat, arrays["online"])
    assert meta["learner_samples"] == 10
    no_policy = save_checkpoint(tmp_path, {"x": np.zeros(3)}, meta_for(20), name="x.npz")
    with pytest.raises(CheckpointError, match="no policy weights"):
        read_policy(no_policy)
    wrong = save_checkpoint(tmp_path, {"online": np.zeros(5, np.float32)}, meta_for(30))
    with pytest.raises(CheckpointError, match="5 weights"):
        read_policy(wrong)


def test_names_and_refusals(tmp_path):
    with pytest.raises(ValueError, match="learner_samples"):
        save_checkpoint(tmp_path, {"a": np.zeros(1)}, {"env_id": "x"})
    with pytest.raises(TypeError, match="not JSON serializable"):
        save_checkpoint(tmp_path, {"a": np.zeros(1)}, meta_for(1, bad=object()))
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path, {"__meta__": np.zeros(1)}, meta_for(1))
    with pytest.raises(ValueError, match="allow_pickle"):  # an object array is never pickled
        save_checkpoint(tmp_path, {"a": np.array([{"x": 1}], dtype=object)}, meta_for(2))
    # names that would clash with np.savez's own keywords are fine
    path = save_checkpoint(tmp_path, {"file": np.ones(2), "allow_pickle": np.zeros(2)},
                           meta_for(3))
    assert set(load_checkpoint(path)[0]) == {"file", "allow_pickle"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000000003.npz"]


def test_unwritable_directory_is_a_disk_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DiskError) as info:
        save_checkpoint(blocker / "checkpoints", arrays_for(), meta_for(1))
    assert str(info.value).startswith(f"{blocker / 'checkpoints'}: ")


def test_pruning_keeps_the_newest_and_best(tmp_path):
    for samples in (100, 2_000, 30_000, 400_000, 5_000_000):  # names sort by samples
        save_checkpoint(tmp_path, arrays_for(), meta_for(samples), keep=3)
        if samples == 2_000:
            save_checkpoint(tmp_path, arrays_for(), meta_for(samples), name="best.npz")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.npz", "ckpt-000000030000.npz", "ckpt-000000400000.npz",
                     "ckpt-000005000000.npz"]
    save_checkpoint(tmp_path, arrays_for(), meta_for(6_000_000), keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "ckpt-000006000000.npz"]
    # a run resumed from an older checkpoint never prunes the one it has just written
    path = save_checkpoint(tmp_path, arrays_for(), meta_for(50), keep=1)
    assert path.is_file() and newest_checkpoint(tmp_path).name == "ckpt-000006000000.npz"


def test_damaged_files_are_refused_by_name(tmp_path):
    good = save_checkpoint(tmp_path, arrays_for(), meta_for(100))
    blob = good.read_bytes()
    cases = {
        "truncated": blob[: len(blob) // 2],
        "cut at end": blob[:-30],
        "empty": b"",
        "garbage": b"not a zip at all" * 10,
    }
    for i, data in enumerate(cases.values()):
        bad = tmp_path / f"ckpt-{200 + i:012d}.npz"
        bad.write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(bad)
        one_line(info.value, bad)
        bad.unlink()
    flipped = bytearray(blob)
    flipped[len(blob) // 3] ^= 0xFF  # inside the weights: caught by the zip CRC
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError):
        read_meta(bad, verify=True)

    no_meta = tmp_path / "nometa.npz"
    np.savez(no_meta, online=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a d3q checkpoint"):
        load_checkpoint(no_meta)
    other = tmp_path / "other.npz"
    np.savez(other, online=np.zeros(3), __meta__=np.array(json.dumps({"format": "zzz"})))
    with pytest.raises(CheckpointError, match="not a d3q checkpoint"):
        load_checkpoint(other)
    future = tmp_path / "future.npz"
    np.savez(future, __meta__=np.array(json.dumps({"format": "d3q-checkpoint/9"})))
    with pytest.raises(CheckpointError, match="d3q-checkpoint/9"):
        load_checkpoint(future)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __meta__=np.array([{"format": FORMAT}], dtype=object))
    with pytest.raises(CheckpointError, match="corrupt checkpoint metadata"):
        load_checkpoint(pickled)
    bare = tmp_path / "bare.npy"
    np.save(bare, np.zeros(3))
    with pytest.raises(CheckpointError, match="bare"):
        load_checkpoint(bare)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "missing.npz")
    assert one_line(info.value, tmp_path / "missing.npz").endswith("checkpoint not found")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_newest_checkpoint_skips_damaged_and_temp_files(tmp_path):
    run_dir = tmp_path / "run"
    ckpts = run_dir / "checkpoints"
    assert newest_checkpoint(run_dir) is None and newest_checkpoint(tmp_path / "nowhere") is None
    older = save_checkpoint(ckpts, arrays_for(), meta_for(1_000))
    newer = save_checkpoint(ckpts, arrays_for(), meta_for(2_000))
    save_checkpoint(ckpts, arrays_for(), meta_for(9_000), name="best.npz")  # not a ckpt-*
    assert newest_checkpoint(run_dir) == newer and newest_checkpoint(ckpts) == newer
    blob = newer.read_bytes()
    newer.write_bytes(blob[: len(blob) - 200])  # a half-written file, as from a dead disk
    (ckpts / ".ckpt-000000099999.npz.1.abcd.tmp").write_bytes(blob)  # a stray temp
    (ckpts / "ckpt-latest.npz").write_bytes(blob)  # not a ckpt-<number>
    assert newest_checkpoint(run_dir) == older
    newer.unlink()
    older.write_bytes(b"")
    assert newest_checkpoint(run_dir) is None


def test_check_compatible(tmp_path):
    path = tmp_path / "ckpt-000000001000.npz"
    meta = meta_for(1_000)
    check_compatible(meta, "CartPole-v1", SPEC)
    check_compatible(meta, "CartPole-v1", SPEC, path=path)
    other = QNetSpec(6, 3, (128, 128), True)
    with pytest.raises(CheckpointError) as info:
        check_compatible(meta, "Acrobot-v1", other, path=path)
    assert str(info.value) == (
        f"{path}: saved for CartPole-v1 with hidden [64, 64], 4 inputs and 2 actions, "
        "this run uses Acrobot-v1 with hidden [128, 128], 6 inputs and 3 actions")
    with pytest.raises(CheckpointError, match=r"with hidden \[64, 64\], this run uses "
                                              r"CartPole-v1 with hidden \[32\]$"):
        check_compatible(meta, "CartPole-v1", QNetSpec(4, 2, (32,), True), path=path)
    with pytest.raises(CheckpointError, match="hidden \\[64, 64\\], no dueling head"):
        check_compatible(meta_for(1, spec=QNetSpec(4, 2, (64, 64), False)), "CartPole-v1", SPEC)
    with pytest.raises(CheckpointError, match="saved for MountainCar-v0"):
        check_compatible(meta_for(1, env_id="MountainCar-v0"), "CartPole-v1", SPEC)
    with pytest.raises(CheckpointError, match="no valid network shape"):
        check_compatible({"env_id": "CartPole-v1"}, "CartPole-v1", SPEC)
    # the older call order (path first), as orchestrator.py uses it
    check_compatible(path, meta, "CartPole-v1", SPEC)
    with pytest.raises(CheckpointError, match=f"^{path}: saved for CartPole-v1"):
        check_compatible(path, meta, "Acrobot-v1", SPEC)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_damage_is_refused_or_harmless(tmp_path_factory, data):
    """Truncation at any byte, or any flipped byte: load returns the same arrays or raises
    CheckpointError, never anything else."""
    directory = tmp_path_factory.mktemp("prop")
    arrays = {"online": np.arange(40, dtype=np.float32), "n": np.array([3], np.int64)}
    blob = save_checkpoint(directory, arrays, meta_for(5)).read_bytes()
    if data.draw(st.booleans(), label="truncate"):
        damaged = blob[: data.draw(st.integers(0, len(blob) - 1), label="cut")]
    else:
        at = data.draw(st.integers(0, len(blob) - 1), label="at")
        damaged = blob[:at] + bytes([blob[at] ^ data.draw(st.integers(1, 255))]) + blob[at + 1:]
    path = directory / "damaged.npz"
    path.write_bytes(damaged)
    try:
        loaded, meta = load_checkpoint(path)
    except CheckpointError as exc:
        one_line(exc, path)
    else:
        assert all(np.array_equal(loaded[k], v) for k, v in arrays.items())


KILL_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from d3q_core.storage.checkpoint import save_checkpoint
    directory, samples = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(samples)
    big = rng.standard_normal(1_500_000).astype(np.float32)  # 6 MB: most time is in writes
    while True:
        samples += 1000
        big[:1] = samples
        save_checkpoint(directory, {"online": big, "n": np.array(samples)},
                        {"learner_samples": samples, "env_id": "x", "spec": {}}, keep=2)
        print(samples, flush=True)
""")


def test_sigkill_while_saving_keeps_the_previous_checkpoint(tmp_path, report):
    directory = tmp_path / "checkpoints"
    rng = random.Random(1234)
    samples = rounds = torn = 0
    while rounds < 3 or (torn == 0 and rounds < 10):  # until a kill has landed mid-write
        rounds += 1
        proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, str(directory), str(samples)],
                                cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()  # at least one save finished this round
            assert first.strip(), "writer died before saving"
            time.sleep(rng.uniform(0.0, 0.25))
        finally:
            proc.send_signal(signal.SIGKILL)
            rest, _ = proc.communicate(timeout=30)
        reported = [int(x) for x in (first + rest).split()]
        torn += bool(list(directory.glob(".ckpt-*.tmp")))  # killed between open and rename
        newest = newest_checkpoint(directory)
        assert newest is not None
        arrays, meta = load_checkpoint(newest)
        assert meta["learner_samples"] >= reported[-1]  # nothing reported saved was lost
        assert arrays["online"][0] == meta["learner_samples"]
        for path in directory.glob("ckpt-*.npz"):  # and no final name ever holds a torso
            load_checkpoint(path)
        samples = meta["learner_samples"]
    assert torn, "no kill landed mid-write in 10 rounds"
    report("SIGKILL while saving a checkpoint", None, kills=rounds, mid_write=torn,
           newest_complete_loads=True, reported_saved_lost=0)
    # killed writers' temps are not checkpoints; the next save sweeps them away, but not
    # a temp whose writer still runs (pid 1 here)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (directory / f".replay.npz.{HOST_TAG}-{dead}.0123abcd.tmp").write_bytes(b"old snapshot")
    (directory / f".replay.npz.{dead}.0123abcd.tmp").write_bytes(b"older, unnamed host")
    live = directory / f".replay.npz.{HOST_TAG}-1.0123abcd.tmp"
    live.write_bytes(b"being written")
    # on a folder machines share (cluster.storage), another machine's pid says nothing here
    elsewhere = directory / f".replay-1.npz.0badcafe-{dead}.0123abcd.tmp"
    elsewhere.write_bytes(b"being written on another node")
    save_checkpoint(directory, {"online": np.zeros(1, np.float32)},
                    {"learner_samples": samples + 1, "env_id": "x", "spec": {}}, keep=2)
    assert sorted(directory.glob(".*.tmp")) == sorted([live, elsewhere])
    assert len(list(directory.glob("ckpt-*.npz"))) == 2
