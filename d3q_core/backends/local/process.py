"""What every process the local backend starts does first: name itself, leave Ctrl-C to the
orchestrator, and die with its parent so that no process is ever orphaned."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Iterable, Iterator
from typing import Any

_PR_SET_PDEATHSIG = 1


SINGLE_THREADED_BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def spawn_context() -> mp.context.SpawnContext:
    """TensorFlow and fork do not mix; every role starts from a fresh interpreter.

    Children inherit single-threaded BLAS: the matrices are tiny, and OpenBLAS's spinning
    worker threads would otherwise fight every process for the same cores (measured: 44% of
    a simulator's time in one 16x128 matmul)."""
    for var in SINGLE_THREADED_BLAS:
        os.environ.setdefault(var, "1")
    return mp.get_context("spawn")


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """While a child starts, multiprocessing sees a bare `__main__`.

    A spawned child otherwise re-runs the parent's main script (or `-m` module) first, so a
    script calling `d3q_core.train()` without an `if __name__ == "__main__":` guard would
    start a second run in every child. d3q's children need nothing from it: their entry
    point and everything they are handed are d3q's own importable objects (a custom env is
    named by its module, `my_pkg.envs:MyEnv-v0`, and imported there)."""
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def set_title(title: str) -> None:
    """`d3q: simulator 3` in ps, top and the Processes panel."""
    try:
        import setproctitle

        setproctitle.setproctitle(title)
    except Exception:  # noqa: BLE001 - a cosmetic feature must never stop a process
        pass


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Linux: the kernel sends `sig` when the parent thread exits. Only a prctl, so it is also
    safe between fork and exec (a subprocess's preexec_fn)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _die_with_parent() -> None:
    set_parent_death_signal(signal.SIGKILL)
    # Portable fallback (and the case where the parent died before prctl ran).
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


CHILD_OUTPUT_ENV = "D3Q_CHILD_OUTPUT"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WORKER_NICENESS = 5
# The evaluator yields to the pacing stages (learner, replay, simulators): it evaluates the
# newest version whenever it gets to it, so lagging costs little, and on 2 cores its episodes
# took 7-20% of the learner's throughput. 10 seeds interleaved: median to goal 10.6 s against
# 13.6 s at the workers' niceness.
EVALUATOR_NICENESS = 15


def redirect_output(path: str | None) -> None:
    """Children write to the run's log.txt, never to the terminal: TensorFlow's C++ start-up
    noise would tear the dashboard's screen and bury the headless run's own lines (a role's
    real failure still reaches the user, as one line, through its Failed message)."""
    if not path:
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


def child_setup(title: str, out_queues: Iterable[Any] = (),
                niceness: int = WORKER_NICENESS, output: str | None = None) -> None:
    """Call first thing in a child's main. `output`: where its stdout and stderr go (default:
    the file named by D3Q_CHILD_OUTPUT, if set)."""
    redirect_output(output or os.environ.get(CHILD_OUTPUT_ENV))
    set_title(title)
    # Workers yield the cores to the interactive process: keys answer at once while training
    # keeps both cores busy (measured under load: ~300 ms without, see BENCHMARKS.md).
    with contextlib.suppress(OSError):
        os.nice(niceness)
    # Ctrl-C, `timeout`, `docker stop`, systemd and a closed terminal signal the whole
    # process group: only the orchestrator acts on them, leading one graceful stop (a child
    # dying of SIGTERM first would take its role's final checkpoint with it). Children still
    # leave when told, and die with their parent.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _die_with_parent()
    # A child must never hang at exit flushing a queue nobody reads any more.
    for q in out_queues:
        q.cancel_join_thread()


def flush_and_exit(code: int, out_queues: Iterable[Any] = (), timeout: float = 2.0) -> None:
    """Leave without interpreter teardown (TensorFlow's can hang at exit), after the queue
    feeder threads have written what they hold, so the last messages are not lost."""
    for q in out_queues:
        with contextlib.suppress(Exception):
            q.close()
    deadline = time.monotonic() + timeout
    for q in out_queues:
        feeder = getattr(q, "_thread", None)
        if feeder is not None:
            feeder.join(max(0.0, deadline - time.monotonic()))
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
