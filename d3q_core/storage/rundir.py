"""The run directory `runs/<time>-<env>/`: config.toml, checkpoints/, TensorBoard events in
tb/ (d3q_core.storage.tensorboard), result.json and log.txt. Everything but the log is
written atomically, so a crash or a full disk never leaves a half-written config or result
behind."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from d3q_core.config import Config, ConfigError, from_dict, load_toml, migrate, to_toml
from d3q_core.storage.atomic import write_text_atomic
from d3q_core.storage.jsonsafe import json_safe

LOCK_NAME = ".lock"


class RunDirError(ValueError):
    """The run directory cannot be created, written or read; one line naming the path."""


def reason_of(exc: OSError) -> str:
    text = exc.strerror or str(exc) or exc.__class__.__name__
    return text[:1].lower() + text[1:]


def sanitize(env_id: str) -> str:
    """An env id as a file-name part: `ALE/Pong-v5` -> `ALE_Pong-v5`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id).strip("._") or "env"


class RunDir:
    """Paths of one run; `create` for a new run, `open_existing` for resume or preview."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.config_path = self.path / "config.toml"
        self.checkpoints = self.path / "checkpoints"
        self.tb = self.path / "tb"
        self.result_path = self.path / "result.json"
        self.log_path = self.path / "log.txt"
        self.evals_path = self.path / "evals.jsonl"  # every evaluation, one JSON line each
        self.write_error: OSError | None = None  # the first failed append (log, evals)
        self._lock_fd: int | None = None  # held by lock() for this process's run

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(cls, root: Path, env_id: str, explicit: Path | None = None,
               storage: Path | None = None) -> RunDir:
        """`root/<YYYYmmdd-HHMMSS>-<env>` (with -2, -3, ... if taken) or `explicit`, with
        checkpoints/ and tb/, proven writable; RunDirError naming the directory otherwise.
        With `storage` (cluster.storage), checkpoints/ is a link to a folder of the run's
        own there (see `_store_checkpoints`)."""
        if storage is not None:  # refused before anything is made here
            cls._make(Path(storage), exist_ok=True, what=f"cluster.storage = {str(storage)!r}",
                      doing="cannot create it")
            cls._probe(Path(storage), f"cluster.storage = {str(storage)!r}: cannot write there")
        if explicit is not None:
            path = Path(explicit)
            existing = cls(path)
            if existing.holds_a_run():
                raise RunDirError(f"{path}: holds another run; continue it with --resume "
                                  f"{path}, or choose another --run-dir")
            cls._make(path, exist_ok=True)
        else:
            base = f"{time.strftime('%Y%m%d-%H%M%S')}-{sanitize(env_id)}"
            cls._make(Path(root), exist_ok=True)
            # two runs started in the same second get two directories
            path = cls._make_new(Path(root), base)
        rd = cls(path)
        cls._make(rd.tb, exist_ok=True, what=path)
        if storage is None:
            cls._make(rd.checkpoints, exist_ok=True, what=path)
        cls._probe(path, f"{path}: cannot create run directory")
        if storage is not None:
            rd._store_checkpoints(Path(storage))
        return rd

    def _store_checkpoints(self, storage: Path) -> None:
        """Checkpoints and replay snapshots in `storage/<run name>/checkpoints`, which every
        node of a cluster reaches at the same path (the learner and the replay write there,
        wherever they run), with checkpoints/ here a link to it: whatever reads a run's
        checkpoints (resume, preview, evaluate) finds them as ever."""
        what = f"cluster.storage = {str(storage)!r}"
        # a folder of this run's own, even if another run had this name
        target = self._make_new(storage, self.path.name, what=what,
                                doing="cannot create the run's folder there")
        self._make(target / "checkpoints", exist_ok=False, what=target)
        self._probe(target / "checkpoints", f"{what}: cannot write {target}")
        try:
            if self.checkpoints.is_dir() and not self.checkpoints.is_symlink():
                self.checkpoints.rmdir()  # an empty one (an explicit --run-dir made before)
            self.checkpoints.symlink_to(Path(os.path.abspath(target)) / "checkpoints",
                                        target_is_directory=True)
        except OSError as exc:
            raise RunDirError(f"{self.checkpoints}: cannot link it to {target} "
                              f"({reason_of(exc)})") from None

    def checkpoints_target(self) -> Path:
        """Where checkpoints are written, as a path that means the same on every node:
        absolute, the storage folder rather than the link to it, and no other link followed
        (a link on this machine, /mnt/shared -> /data say, may not exist on another)."""
        path = self.checkpoints
        if path.is_symlink():
            path = path.parent / os.readlink(path)
        return Path(os.path.abspath(path))

    @staticmethod
    def _probe(path: Path, failure: str) -> None:
        probe = path / f".write-probe-{time.monotonic_ns()}"
        try:
            probe.write_bytes(b"probe")
            probe.unlink()
        except OSError as exc:
            raise RunDirError(f"{failure} (not writable: {reason_of(exc)})") from None

    def holds_a_run(self) -> bool:
        """A run's settings, results or checkpoints are here already."""
        if self.config_path.exists() or self.result_path.exists():
            return True
        try:
            return self.checkpoints.is_dir() and any(self.checkpoints.iterdir())
        except OSError:
            return False

    def lock(self) -> None:
        """Hold this directory for this process's run: a second run (or a resume) of the same
        directory is refused while this one lives. The kernel drops the lock when the process
        ends, however it ends, so a killed run never leaves a stale lock behind."""
        import fcntl

        path = self.path / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"{path}: cannot lock the run directory "
                              f"({reason_of(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunDirError(f"{self.path}: in use by another d3q run (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def in_use(self) -> bool:
        """A live run holds this directory's lock (without taking it)."""
        import fcntl

        try:
            fd = os.open(self.path / LOCK_NAME, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)  # closing drops the shared lock if it was taken

    def unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    @staticmethod
    def _make(path: Path, exist_ok: bool, what: Path | str | None = None,
              doing: str = "cannot create run directory") -> None:
        try:
            path.mkdir(parents=True, exist_ok=exist_ok)
        except FileExistsError:
            if not exist_ok:
                raise
            raise RunDirError(f"{what or path}: {doing} "
                              f"({path} exists and is not a directory)") from None
        except OSError as exc:
            raise RunDirError(f"{what or path}: {doing} ({reason_of(exc)})") from None

    @classmethod
    def _make_new(cls, parent: Path, base: str, what: str | None = None,
                  doing: str = "cannot create run directory") -> Path:
        """`parent/base`, or `base-2`, `base-3`, ... where taken: a new directory of one's
        own (exist_ok=False: two makers racing get two). RunDirError as `_make`."""
        n = 1
        while True:
            path = parent / (base if n == 1 else f"{base}-{n}")
            try:
                cls._make(path, exist_ok=False, what=what, doing=doing)
                return path
            except FileExistsError:
                n += 1

    @classmethod
    def open_existing(cls, path: Path) -> RunDir:
        """A run to resume or preview: it must hold config.toml."""
        rd = cls(Path(path))
        if not rd.path.is_dir():
            raise RunDirError(f"{rd.path}: no such run directory")
        if not rd.config_path.is_file():
            raise RunDirError(f"{rd.config_path}: missing; not a d3q run directory")
        if rd.checkpoints.is_symlink() and not rd.checkpoints.is_dir():
            raise RunDirError(f"{rd.checkpoints}: links to {os.readlink(rd.checkpoints)}, "
                              "which cannot be reached (cluster.storage not mounted here?)")
        return rd

    # --- files ---------------------------------------------------------------------------------

    def write_config(self, config: Config) -> None:
        write_text_atomic(self.config_path, to_toml(config))

    def read_config(self) -> Config:
        """The run's resolved Config; a ConfigError names config.toml."""
        try:
            return from_dict(migrate(load_toml(self.config_path)))
        except ConfigError as exc:
            text = str(exc)
            if str(self.config_path) in text:
                raise
            raise ConfigError(f"{self.config_path}: {text}") from None

    def write_result(self, result: dict) -> None:
        """result.json: sorted keys, indent 2, NaN as null; atomic, DiskError on failure."""
        text = json.dumps(json_safe(result), indent=2, sort_keys=True, allow_nan=False)
        write_text_atomic(self.result_path, text + "\n")

    def read_result(self) -> dict:
        try:
            data = json.loads(self.result_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunDirError(f"{self.result_path}: no result yet") from None
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{self.result_path}: unreadable ({exc.__class__.__name__})") \
                from None
        if not isinstance(data, dict):
            raise RunDirError(f"{self.result_path}: not a JSON object")
        return data

    def append_log(self, line: str) -> None:
        """One line appended and flushed. A failure does not raise (the log on screen still
        has the line); it is kept in `write_error` for the run to act on (a full disk ends
        it)."""
        self._append(self.log_path, line.rstrip("\n"))

    def append_eval(self, record: dict) -> None:
        """One evaluation appended to evals.jsonl as it happens: the history a resume
        restores costs one short write per evaluation, never a rewrite of the whole history
        (which, at each checkpoint, grew the orchestrator's memory with the run's length)."""
        self._append(self.evals_path, json.dumps(json_safe(record), allow_nan=False))

    def _append(self, path: Path, line: str) -> None:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            if self.write_error is None:
                self.write_error = exc
                self.write_error.filename = str(path)

    def read_evals(self, max_learner_samples: int) -> list[dict]:
        """The evaluations in evals.jsonl of parameters up to `max_learner_samples` (a
        checkpoint's), in order; a torn last line (a kill mid-write) is skipped."""
        try:
            lines = self.evals_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("learner_samples", 0) \
                    <= max_learner_samples:
                out.append(record)
        return out

    def rewrite_evals(self, records: list[dict]) -> None:
        """evals.jsonl holding just `records` (a resume drops the evaluations of parameters
        it never had), atomically."""
        text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
        write_text_atomic(self.evals_path, text)
