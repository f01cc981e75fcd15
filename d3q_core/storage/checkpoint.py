"""Checkpoints: one pickle-free `.npz` per checkpoint, written atomically.

Arrays are stored by name; a `__meta__` entry holds JSON (counters, env id, network shape,
evaluation history, ...) as a 0-d unicode array, so `np.load(path, allow_pickle=False)` reads
everything. Default names sort by learner samples: `ckpt-000000123456.npz`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from d3q_core.algo.qnet import QNetSpec
from d3q_core.storage.atomic import TEMP_SUFFIX, DiskError, atomic_path, disk_error, temp_owner
from d3q_core.storage.jsonsafe import json_safe

FORMAT = "d3q-checkpoint/1"
META_KEY = "__meta__"
CKPT_GLOB = "ckpt-*.npz"
_CKPT_NAME = re.compile(r"ckpt-(\d+)\.npz")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not fit this run; one line naming the file."""


def checkpoint_name(learner_samples: int) -> str:
    return f"ckpt-{int(learner_samples):012d}.npz"


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """What np.savez does, but with allow_pickle=False (an object array is refused, never
    pickled) and without np.savez's keyword names (`file`, `allow_pickle`) clashing."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def save_checkpoint(directory: Path, arrays: dict[str, np.ndarray], meta: dict,
                    keep: int = 3, name: str | None = None) -> Path:
    """Write `arrays` and `meta` as one .npz in `directory`, atomically; then keep only the
    newest `keep` ckpt-* files (a named file such as best.npz is never pruned). Raises
    DiskError on a write failure, the previous checkpoints untouched."""
    directory = Path(directory)
    if META_KEY in arrays:
        raise ValueError(f"array name {META_KEY!r} is reserved for the metadata")
    meta = {**meta, "format": FORMAT}
    if name is None:
        if "learner_samples" not in meta:
            raise ValueError("meta needs learner_samples to name the checkpoint")
        name = checkpoint_name(meta["learner_samples"])
    path = directory / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(directory, exc) from None
    payload = {**arrays, META_KEY: np.array(json.dumps(json_safe(meta), allow_nan=False))}
    with atomic_path(path) as tmp:
        _write_npz(tmp, payload)
    if _CKPT_NAME.fullmatch(path.name):
        prune(directory, keep, protect=path)
    return path


def prune(directory: Path, keep: int, protect: Path | None = None) -> None:
    """Remove all but the newest `keep` ckpt-* files (never `protect`), and temp files left
    by writers that no longer run (a killed learner's checkpoint, a killed replay's
    snapshot), which would otherwise fill the disk over many crashes."""
    ckpts = _ckpt_files(Path(directory))
    for old in ckpts[: max(0, len(ckpts) - max(1, keep))]:
        if protect is None or old.name != protect.name:
            with contextlib.suppress(OSError):
                old.unlink()
    for tmp in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        pid = temp_owner(tmp)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _ckpt_files(directory: Path) -> list[Path]:
    """ckpt-<samples>.npz files, oldest (fewest learner samples) first."""
    found = [(int(m.group(1)), p) for p in directory.glob(CKPT_GLOB)
             if (m := _CKPT_NAME.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _open(path: Path) -> Any:
    """np.load as an NpzFile, with every failure as a CheckpointError naming the file."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, not a checkpoint") from None
    except PermissionError:
        raise CheckpointError(f"{path}: cannot read checkpoint (permission denied)") from None
    except Exception as exc:  # a truncated zip, garbage, a pickle: all simply unreadable
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({_short(exc)})") \
            from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: not a d3q checkpoint (a bare .npy array)")
    return data


def _parse_meta(path: Path, data: Any) -> dict:
    if META_KEY not in data.files:
        raise CheckpointError(f"{path}: not a d3q checkpoint (no {META_KEY} entry)")
    try:
        raw = data[META_KEY]
        if raw.ndim != 0 or raw.dtype.kind != "U":
            raise ValueError("metadata is not a unicode string")
        meta = json.loads(str(raw.item()))
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
    except Exception as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint metadata ({_short(exc)})") from None
    fmt = meta.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("d3q-checkpoint/"):
            raise CheckpointError(f"{path}: checkpoint format {fmt} (this d3q reads {FORMAT})")
        raise CheckpointError(f"{path}: not a d3q checkpoint (format {fmt!r})")
    return meta


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Every array and the metadata; CheckpointError (one line naming the file) if missing,
    corrupt or truncated, without metadata, or of another format."""
    path = Path(path)
    data = _open(path)
    with data:
        meta = _parse_meta(path, data)
        try:
            arrays = {k: data[k] for k in data.files if k != META_KEY}
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({_short(exc)})") \
                from None
    return arrays, meta


def read_meta(path: Path, verify: bool = False) -> dict:
    """Only the metadata (cheap); with verify, also check every entry's CRC, which finds a
    truncated or damaged file without holding its arrays in memory."""
    path = Path(path)
    data = _open(path)
    with data:
        meta = _parse_meta(path, data)
        if verify:
            try:
                bad = data.zip.testzip()
            except Exception as exc:
                raise CheckpointError(f"{path}: corrupt or truncated checkpoint "
                                      f"({_short(exc)})") from None
            if bad is not None:
                raise CheckpointError(f"{path}: corrupt checkpoint (bad CRC in {bad})")
    return meta


def checkpoints_dir(run_dir_or_checkpoints_dir: Path) -> Path:
    path = Path(run_dir_or_checkpoints_dir)
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


def newest_checkpoint(run_dir_or_checkpoints_dir: Path) -> Path | None:
    """The newest ckpt-*.npz that reads back whole; a damaged one is skipped. Takes the run
    directory or its checkpoints/ directory; None when there is none."""
    directory = checkpoints_dir(run_dir_or_checkpoints_dir)
    if not directory.is_dir():
        return None
    for candidate in reversed(_ckpt_files(directory)):
        try:
            read_meta(candidate, verify=True)
        except CheckpointError:
            continue
        return candidate
    return None


def _spec_of(path: Path, meta: dict) -> QNetSpec:
    try:
        return QNetSpec.from_dict(meta["spec"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: checkpoint has no valid network shape (spec)") from None


def read_policy(path: Path) -> tuple[QNetSpec, np.ndarray, dict]:
    """Network shape, flat float32 online weights and metadata: enough to act with NumPy."""
    path = Path(path)
    arrays, meta = load_checkpoint(path)
    if "online" not in arrays:
        raise CheckpointError(f"{path}: checkpoint has no policy weights (online)")
    spec = _spec_of(path, meta)
    flat = np.ascontiguousarray(arrays["online"], dtype=np.float32).ravel()
    if flat.size != spec.n_params:
        raise CheckpointError(f"{path}: {flat.size} weights, but the stored network shape "
                              f"needs {spec.n_params}")
    return spec, flat, meta


def _describe(env_id: Any, spec: QNetSpec, other: QNetSpec) -> str:
    text = f"{env_id} with hidden {list(spec.hidden)}"
    if spec.dueling != other.dueling:
        text += ", dueling" if spec.dueling else ", no dueling head"
    if spec.conv != other.conv:
        text += f", convolutions {[list(c) for c in spec.conv]}" if spec.conv else ", no CNN"
    if (spec.obs_shape, spec.n_actions) != (other.obs_shape, other.n_actions):
        inputs = spec.obs_dim if len(spec.obs_shape) == 1 else "x".join(map(str, spec.obs_shape))
        text += f", {inputs} inputs and {spec.n_actions} actions"
    return text


def check_compatible(meta: dict, env_id: str, spec: QNetSpec,
                     path: str | Path | None = None) -> None:
    """Refuse a checkpoint from another env or network shape, saying which. The older call
    order `check_compatible(path, meta, env_id, spec)` is accepted too."""
    if isinstance(meta, (str, os.PathLike)):  # legacy order: (path, meta, env_id, spec)
        path, meta, env_id, spec = meta, env_id, spec, path  # type: ignore[assignment]
    where = str(path) if path is not None else "checkpoint"
    if not isinstance(meta, dict) or not isinstance(spec, QNetSpec):
        raise TypeError("check_compatible(meta, env_id, spec, path=None)")
    saved = _spec_of(Path(where), meta)
    saved_env = meta.get("env_id")
    if saved_env != env_id or saved != spec:
        raise CheckpointError(f"{where}: saved for {_describe(saved_env, saved, spec)}, "
                              f"this run uses {_describe(env_id, spec, saved)}")


__all__ = [
    "FORMAT", "META_KEY", "CheckpointError", "DiskError", "check_compatible", "checkpoint_name",
    "checkpoints_dir", "load_checkpoint", "newest_checkpoint", "prune", "read_meta",
    "read_policy", "save_checkpoint",
]
