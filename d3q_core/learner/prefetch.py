"""Sample batches read from the replay's queue by a thread of the learner process.

Taking a batch off a multiprocessing queue means reading a pipe and unpickling ~30 KB (about
a third of a millisecond); done in the learner's loop it is time the train step waits. A
compiled TensorFlow call releases the GIL while it runs, so a thread that reads the next
batch meanwhile hides that cost: the loop finds it already unpickled.
"""

from __future__ import annotations

import queue
import threading
from typing import Any


class BatchPrefetcher:
    def __init__(self, source: Any, run_over: Any, depth: int = 2):
        self._source, self._run_over = source, run_over
        self._ready: queue.Queue = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="d3q-prefetch", daemon=True)
        self._thread.start()

    def _leaving(self) -> bool:
        return self._closed.is_set() or self._run_over.is_set()

    def _read(self) -> None:
        while not self._leaving():
            try:
                item = self._source.get(timeout=0.05)
            except queue.Empty:
                continue
            except (OSError, EOFError, ValueError):  # the queue closed under us: the run ended
                return
            while not self._leaving():
                try:
                    self._ready.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue

    def get(self, timeout: float) -> Any:
        """The next batch; queue.Empty after `timeout` seconds without one."""
        return self._ready.get(timeout=timeout)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=1.0)
