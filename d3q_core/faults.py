"""Fault injection for the reliability tests, read from the D3Q_FAULTS environment variable.

`D3Q_FAULTS="simulator_raise_after=200,learner_sleep=0.05"` makes simulator 0 raise after 200
vector steps (first incarnation only) and the learner sleep 50 ms per step. Unset in normal
use, where every hook is a dictionary lookup that finds nothing.
"""

from __future__ import annotations

import os

KNOWN = {
    "simulator_raise_after",  # simulator 0 raises after N vector steps (first incarnation)
    "simulator_always_raise_after",  # every incarnation of simulator 0 raises after N steps
    "learner_sleep",  # seconds of extra time per learner step (a slow learner)
    "learner_nan_after",  # the learner reports a non-finite loss after N steps
    "replay_stop_serving_after",  # the replay stops serving samples after N batches
}


def _parse(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, _, value = item.partition("=")
        if key not in KNOWN:
            raise ValueError(f"D3Q_FAULTS: unknown fault {key!r}")
        out[key] = float(value or 1)
    return out


FAULTS = _parse(os.environ.get("D3Q_FAULTS", ""))


def fault(name: str) -> float | None:
    return FAULTS.get(name)
