"""A `report` fixture: each fault test states what it injected, what the run did and how long
recovery or stopping took. With D3Q_RELIABILITY_REPORT=FILE set (`python -m bench
reliability` sets it) the lines are appended to FILE as JSON, so the table in BENCHMARKS.md
comes from an actual run of these tests; without it the fixture records nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

ReportFn = Callable[[str, str, float | None], None]


@pytest.fixture
def report(request) -> ReportFn:
    target = os.environ.get("D3Q_RELIABILITY_REPORT")

    def record(fault: str, outcome: str, seconds: float | None) -> None:
        if not target:
            return
        line = {"test": request.node.name, "fault": fault, "outcome": outcome,
                "seconds": None if seconds is None else round(float(seconds), 2)}
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    return record
