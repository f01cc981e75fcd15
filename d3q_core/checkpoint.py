"""Checkpoints: one pickle-free `.npz` per checkpoint, written atomically.

Arrays are stored by name; a `__meta__` entry holds JSON (counters, env id, network shape,
evaluation history) as a plain unicode array, so loading needs no pickle.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from d3q_core.atomic import atomic_path
from d3q_core.qnet import QNetSpec

FORMAT = "d3q-checkpoint/1"
META_KEY = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not fit this run; one line naming the file."""


def save_checkpoint(directory: Path, arrays: dict[str, np.ndarray], meta: dict,
                    keep: int = 3, name: str | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, **meta}
    path = directory / (name or f"ckpt-{int(meta.get('learner_samples', 0)):012d}.npz")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, **{META_KEY: np.array(json.dumps(meta))})
    if name is None:
        for old in sorted(directory.glob("ckpt-*.npz"))[:-keep]:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc.__class__.__name__})") \
            from None
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: not a d3q checkpoint (no metadata)")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: corrupt checkpoint metadata") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    return arrays, meta


def _checkpoint_dir(path: Path) -> Path:
    path = Path(path)
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The newest ckpt-*.npz that loads; a corrupt one (say, from a dead disk) is skipped."""
    for candidate in sorted(_checkpoint_dir(run_dir).glob("ckpt-*.npz"), reverse=True):
        try:
            load_checkpoint(candidate)
        except CheckpointError:
            continue
        return candidate
    return None


def read_policy(path: Path) -> tuple[QNetSpec, np.ndarray, dict]:
    """Network shape, online weights and metadata: enough to act with NumPy."""
    arrays, meta = load_checkpoint(path)
    if "online" not in arrays or "spec" not in meta:
        raise CheckpointError(f"{path}: checkpoint has no policy weights")
    spec = QNetSpec.from_dict(meta["spec"])
    flat = arrays["online"].astype(np.float32).ravel()
    if flat.size != spec.n_params:
        raise CheckpointError(f"{path}: weights do not match the stored network shape")
    return spec, flat, meta


def check_compatible(path: Path, meta: dict, env_id: str, spec: QNetSpec) -> None:
    saved = QNetSpec.from_dict(meta["spec"])
    if meta.get("env_id") != env_id or saved != spec:
        raise CheckpointError(
            f"{path}: saved for {meta.get('env_id')} with hidden {list(saved.hidden)} "
            f"(dueling {saved.dueling}); this run uses {env_id} with hidden "
            f"{list(spec.hidden)} (dueling {spec.dueling})"
        )
