"""Fault injection for the reliability tests, from the D3Q_FAULTS environment variable.

`D3Q_FAULTS="simulator_raise_after=200,learner_sleep=0.05"` makes simulator 0 raise after 200
vector steps (first incarnation only) and the learner sleep 50 ms per step. It is read only
where D3Q_FAULT_INJECTION=1 is set as well, so a stray variable in a user's shell never
changes a run; the run logs the faults it injects, and refuses a malformed value before
anything starts (`check_environment`). Unset, every hook is a lookup that finds nothing.
"""

from __future__ import annotations

import os

ENABLE = "D3Q_FAULT_INJECTION"
KNOWN = {
    "simulator_raise_after",  # simulator 0 raises after N vector steps (first incarnation)
    "simulator_always_raise_after",  # every incarnation of simulator 0 raises after N steps
    "learner_sleep",  # seconds of extra time per learner step (a slow learner)
    # the learner reports a non-finite loss after N steps, once it has saved a checkpoint
    "learner_nan_after",
    "learner_nan_weights_after",  # the same for its weights
    "replay_stop_serving_after",  # the replay stops serving samples after N batches
    "simulator_nan_priorities",  # simulator 0 sends NaN initial priorities
}


class FaultSpecError(ValueError):
    """D3Q_FAULTS cannot be read; the message is one line."""


def parse(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in KNOWN:
            raise FaultSpecError(f"D3Q_FAULTS: unknown fault {key!r}; known: "
                                 f"{', '.join(sorted(KNOWN))}")
        try:
            out[key] = float(value or 1)
        except ValueError:
            raise FaultSpecError(f"D3Q_FAULTS: {key} = {value!r}: expected a number") from None
    return out


def enabled() -> bool:
    return os.environ.get(ENABLE) == "1"


def check_environment() -> tuple[dict[str, float], str | None]:
    """The faults a run will inject and a line for its log (None when nothing is set);
    FaultSpecError for a malformed D3Q_FAULTS while injection is enabled."""
    text = os.environ.get("D3Q_FAULTS", "")
    if not text:
        return {}, None
    if not enabled():
        return {}, f"D3Q_FAULTS ignored: fault injection is off ({ENABLE}=1 enables it)"
    faults = parse(text)
    return faults, f"fault injection active: {text}"


def _load() -> dict[str, float]:
    try:
        return check_environment()[0]
    except FaultSpecError:  # refused by the run before any role started
        return {}


FAULTS = _load()


def fault(name: str) -> float | None:
    return FAULTS.get(name)
