"""`d3q-tui export RUN_DIR --format keras|savedmodel`: the trained network in a standard
format, for serving or for further work outside d3q.

- keras: a `.keras` file that `keras.saving.load_model` loads; input (batch, obs_dim)
  float32 for a vector env, (batch, *obs_shape) uint8 frames for a pixel env (scaled inside
  the model), output the Q-values (batch, n_actions).
- savedmodel: a TensorFlow SavedModel directory whose `serve` signature (also the default
  `serving_default`) maps observations to Q-values: TF Serving, TFLite's converter, or
  `tf.saved_model.load(path).serve(obs)`.

This is the one command besides the learner that imports TensorFlow, and only when it runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from d3q_core.policy import Policy, load_policy
from d3q_core.tools import ToolError

FORMATS = ("keras", "savedmodel")


class ExportError(ToolError):
    """A bad export request (format, destination); the message is one line."""


def default_destination(policy: Policy, run_dir: Path, fmt: str) -> Path:
    stem = Path(policy.checkpoint or "policy").stem
    return run_dir / "export" / (f"{stem}.keras" if fmt == "keras" else f"{stem}-savedmodel")


def export_policy(run_dir: str | Path, fmt: str, checkpoint: str = "auto",
                  out: str | Path | None = None) -> Path:
    """Writes the export and returns its path. An existing destination is replaced only
    once the new export is complete (written beside it, then renamed)."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: must be one of {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    policy = load_policy(run_dir, checkpoint)
    dest = Path(out) if out is not None else default_destination(policy, run_dir, fmt)
    if fmt == "keras" and dest.suffix != ".keras":
        raise ExportError(f"{dest}: a Keras export's file name must end in .keras")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tmp = dest.with_name(f".{dest.name}.part" + (".keras" if fmt == "keras" else ""))
    _remove(tmp)
    # TensorFlow's C++ start-up lines (no CUDA driver, ...) stay off the terminal
    with _native_stderr_captured():
        from d3q_core.algo.model import build_q_model, set_flat

        model = build_q_model(policy.spec, name="d3q_q")
        set_flat(model, policy.spec, policy.weights)
        try:
            if fmt == "keras":
                model.save(tmp)
            else:
                model.export(str(tmp), format="tf_saved_model", verbose=False)
            _remove(dest)
            tmp.replace(dest)
        finally:
            _remove(tmp)
    return dest


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """File descriptor 2 goes to a temporary file for the block (C++ writes there, below
    Python's sys.stderr); if the block fails, what was written is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
