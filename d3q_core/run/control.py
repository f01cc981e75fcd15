"""RunControl: the whole of what a face (the dashboard, the headless printer) may ask of a
run. The Orchestrator implements it, and so does the dashboard tests' fake; the faces take
this protocol, never an orchestrator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from d3q_core.algo.qnet import QNetSpec
from d3q_core.roles.ports import ParamsIn
from d3q_core.snapshot import Snapshot


@runtime_checkable
class RunControl(Protocol):
    env_id: str
    goal: float
    run_dir: Path
    spec: QNetSpec  # the Q-network's shape, for the preview window
    params: ParamsIn | None  # the newest parameters, for the preview window
    tensorboard_url: str | None  # set by a face that serves TensorBoard; Snapshots carry it

    @property
    def paused(self) -> bool: ...

    def run(self, on_snapshot: Callable[[Snapshot], None] | None = None) -> Any:
        """Blocking: the run to its end; returns a RunResult (solved, stop_reason,
        exit_code, error, summary)."""
        ...

    def request_stop(self, reason: str = "quit") -> None: ...
    def abort(self) -> None:
        """Stop at once (a second Ctrl-C): no final checkpoint."""
        ...
    def request_checkpoint(self) -> None: ...
    def set_paused(self, paused: bool) -> None: ...
    def log(self, text: str, level: str = "info") -> None: ...
    def attach(self, role: str, pid: int) -> None:
        """A process a face started (the preview, TensorBoard) joins the Processes panel."""
        ...
    def detach(self, role: str) -> None: ...
