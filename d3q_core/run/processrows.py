"""The Processes panel's rows: every role (with its restarts), the orchestrator, and the
children a face attached (the preview window, TensorBoard), with each one's rate, CPU and
memory."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from d3q_core.roles import messages as m
from d3q_core.run.runstate import RunState
from d3q_core.snapshot import ProcessStats


def _row(state: RunState, role: str, index: int, pid: int | None, status: str, restarts: int,
         load: Mapping, node: str) -> ProcessStats:
    s = state.stats(role, index)
    rate, unit, detail = 0.0, "", ""
    if isinstance(s, m.SimulatorStats):
        rate, unit, detail = s.steps_per_s, "steps/s", f"eps {s.epsilon:.2f}"
    elif isinstance(s, m.LearnerStats):
        rate, unit = s.samples_per_s, "samples/s"
    elif isinstance(s, m.ReplayStats):
        rate, unit = s.sample_rate, "samples/s"
    cpu, rss = load.get((role, index), (0.0, 0))
    return ProcessStats(role, index, pid, status, rate, unit, cpu, rss, restarts, detail, node)


def process_rows(state: RunState, roles: Iterable[Any], attached: Mapping[str, int],
                 telemetry: Any, paused: bool) -> tuple[ProcessStats, ...]:
    """`roles`: the supervisor's role records (role, index, handle, state, restarts)."""
    roles = list(roles)
    pids = {(c.role, c.index): c.handle.pid for c in roles if c.handle.pid}
    pids[("orchestrator", 0)] = os.getpid()
    for role, pid in attached.items():
        pids[(role, 0)] = pid
    nodes = {(c.role, c.index): c.handle.node for c in roles}
    load = telemetry.processes(pids, nodes)
    here = telemetry.here
    rows = [_row(state, "orchestrator", 0, os.getpid(), "running", 0, load, here)]
    for c in roles:
        status = "paused" if paused and c.state == "running" else c.state
        rows.append(_row(state, c.role, c.index, c.handle.pid, status, c.restarts, load,
                         c.handle.node))
    for role, pid in attached.items():
        rows.append(_row(state, role, 0, pid, "running", 0, load, here))
    return tuple(rows)
