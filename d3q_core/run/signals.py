"""The stop signals of a blocking run: SIGINT, SIGTERM or SIGHUP (to this process alone or to
its group) is one graceful stop led by the orchestrator (final checkpoint, result.json
`interrupted`, exit 130); a second one stops at once. Shared by the headless face and the
Python API, so `train()` in a script behaves as `d3q-tui --no-ui` does."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from d3q_core.run.control import RunControl

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def graceful_stop(orch: RunControl, restore: bool = True) -> Iterator[None]:
    """Within the block, the stop signals stop `orch`; the previous handlers come back after
    (unless `restore` is false: a command that exits next keeps ignoring a late signal, which
    finds the run already stopping). Off the main thread (where Python cannot take signals)
    it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = {"n": 0}

    def on_signal(signum: int, _frame: Any) -> None:
        count["n"] += 1
        name = signal.Signals(signum).name
        if count["n"] == 1:
            orch.log(f"{name}: stopping (checkpoint, then exit)", "warning")
            orch.request_stop("interrupted")
        else:
            orch.log(f"second signal ({name}): stopping now", "warning")
            orch.abort()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        if restore:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
