"""The fault-injection tests, run for their figures: each passing test reports the fault it
injected, the facts it asserted about what the run did, and the seconds to recover or stop
(tests/conftest.py `report`); the table's outcome column is made from those facts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/reliability",
    "tests/test_checkpoint.py::test_sigkill_while_saving_keeps_the_previous_checkpoint",
    "tests/test_e2e.py::test_bad_input_is_one_line_and_exit_2",
]


def run(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="d3q-reliability-") as tmp:
        target = Path(tmp) / "report.jsonl"
        env = {**os.environ, "D3Q_RELIABILITY_REPORT": str(target)}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *TESTS], cwd=REPO, env=env, capture_output=True, text=True)
        tail = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
        print(f"pytest: {tail[0]}")
        rows = [json.loads(line) for line in target.read_text().splitlines()] \
            if target.is_file() else []
    if proc.returncode != 0:
        print(proc.stdout[-3000:])
    print("| fault injected | what the run did (asserted) | seconds to recover or stop |")
    print("|---|---|---:|")
    for r in rows:
        seconds = "—" if r["seconds"] is None else f"{r['seconds']:.1f}"
        print(f"| {r['fault']} | {outcome(r['facts'])} | {seconds} |")
    return rows


def outcome(facts: dict) -> str:
    """`exit 130, stop_reason interrupted, survivors 0` from the asserted facts."""
    parts = []
    for key, value in facts.items():
        if key == "exit":
            parts.insert(0, f"exit {value}")
        elif isinstance(value, bool):
            parts.append(key.replace("_", " ") + ("" if value else ": no"))
        else:
            parts.append(f"{key.replace('_', ' ')}: {value}")
    return ", ".join(parts).replace("|", "/")
