"""The run directory: config.toml, checkpoints/, TensorBoard events in tb/, result.json and
log.txt. Everything but the log is written atomically."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from d3q_core.atomic import write_text_atomic
from d3q_core.config import Config, ConfigError, from_dict, load_toml, to_toml


class RunDirError(ValueError):
    """The run directory cannot be created, written or read; one line naming it."""


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.config_path = self.path / "config.toml"
        self.checkpoints = self.path / "checkpoints"
        self.tb = self.path / "tb"
        self.result_path = self.path / "result.json"
        self.log_path = self.path / "log.txt"

    @classmethod
    def create(cls, root: Path, env_id: str, explicit: Path | None = None) -> RunDir:
        if explicit is not None:
            path = Path(explicit)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id)
            path = Path(root) / f"{stamp}-{name}"
            n = 2
            while path.exists():
                path = Path(root) / f"{stamp}-{name}-{n}"
                n += 1
        try:
            for sub in (path, path / "checkpoints", path / "tb"):
                sub.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise RunDirError(f"{path}: cannot create run directory ({reason})") from None
        return cls(path)

    @classmethod
    def open_existing(cls, path: Path) -> RunDir:
        rd = cls(Path(path))
        if not rd.path.is_dir():
            raise RunDirError(f"{rd.path}: no such run directory")
        if not rd.config_path.is_file():
            raise RunDirError(f"{rd.config_path}: missing; not a d3q run directory")
        return rd

    def write_config(self, config: Config) -> None:
        write_text_atomic(self.config_path, to_toml(config))

    def read_config(self) -> Config:
        try:
            return from_dict(load_toml(self.config_path))
        except ConfigError as exc:
            raise ConfigError(f"{self.config_path}: {exc}") from None

    def write_result(self, result: dict) -> None:
        text = json.dumps(_json_safe(result), indent=2, sort_keys=True)
        write_text_atomic(self.result_path, text + "\n")

    def read_result(self) -> dict:
        return json.loads(self.result_path.read_text())

    def append_log(self, line: str) -> None:
        try:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:
            pass  # the log on screen still has it; a full disk is reported where it matters


class TensorBoardLog:
    """Scalars against learner samples, written with tensorboardX so the orchestrator's
    process never imports TensorFlow."""

    def __init__(self, directory: Path, enabled: bool = True):
        self.writer = None
        if enabled:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(logdir=str(directory), flush_secs=5)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None and math.isfinite(value):
            self.writer.add_scalar(tag, value, global_step=step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, global_step=step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
