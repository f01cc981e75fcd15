"""Atomic writes: a temp file in the same directory, fsync, rename, fsync the directory.

A process killed mid-write, or a full disk, leaves the previous file intact and nothing partial
under the final name; a failure is one `DiskError` line naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"


class DiskError(OSError):
    """A write failed (full disk, no permission, ...); str() is `<file>: <reason>`."""

    def __init__(self, path: str | Path, reason: str, errno: int | None = None):
        super().__init__(errno, reason, str(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"

    def __reduce__(self):  # survives a multiprocessing queue with its own arguments
        return (type(self), (self.filename, self.strerror, self.errno))


def disk_error(path: str | Path, exc: OSError) -> DiskError:
    """The one-line DiskError for `exc` raised while writing `path`."""
    if isinstance(exc, DiskError):
        return exc
    reason = exc.strerror or str(exc) or errno_mod.errorcode.get(exc.errno or 0, "I/O error")
    reason = reason.splitlines()[0] if reason else "I/O error"
    return DiskError(path, reason[:1].lower() + reason[1:], exc.errno)


# this machine in temp names: on a folder several machines share (cluster.storage), a pid
# means something only on the machine that wrote it
HOST_TAG = hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def temp_name(target: Path) -> Path:
    """`.<name>.<host>-<pid>.<random>.tmp` beside target: hidden, so no `name-*.ext` glob
    sees it, and carrying the writer's machine and pid so a leftover from a killed writer
    can be recognised."""
    return target.parent / (f".{target.name}.{HOST_TAG}-{os.getpid()}."
                            f"{secrets.token_hex(4)}{TEMP_SUFFIX}")


def temp_owner(path: Path) -> int | None:
    """The pid recorded in a temp name made by `temp_name` on this machine; None for any
    other name, or a temp file another machine is writing."""
    parts = path.name.split(".")
    if len(parts) < 4 or not path.name.endswith(TEMP_SUFFIX):
        return None
    host, _, pid = parts[-3].rpartition("-")
    if host and host != HOST_TAG:
        return None
    try:
        return int(pid)
    except ValueError:
        return None


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields an empty temp file's path beside `path`; on success it is fsynced and renamed
    onto `path`, on any failure removed. Write through a file object (`np.savez(f, ...)`):
    given a name that does not end in `.npz`, np.savez would append one."""
    target = Path(path)
    tmp: Path | None = None
    try:
        for _ in range(100):
            tmp = temp_name(target)
            try:  # mode 0o666: the umask decides, as for any new file
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            break
        else:  # pragma: no cover - 100 random name collisions
            raise FileExistsError(errno_mod.EEXIST, "no free temporary name")
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, target)
        tmp = None
        with contextlib.suppress(OSError):  # the rename is done; some filesystems refuse this
            _fsync_path(target.parent, directory=True)
    except OSError as exc:
        _remove(tmp)
        raise disk_error(target, exc) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
