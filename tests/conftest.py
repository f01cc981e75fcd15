"""A `report` fixture: each fault test states the fault it injected, the seconds recovery or
stopping took, and the facts it asserted (exit code, stop reason, restarts, processes left).
With D3Q_RELIABILITY_REPORT=FILE set (`python -m bench reliability` sets it) the rows are
appended to FILE as JSON, and only for a test that passed: the fault table in BENCHMARKS.md
is generated from what the tests asserted, never written by hand."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

ReportFn = Callable[..., None]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def report(request):
    """report(fault, seconds, **facts): facts are the values the test asserted on."""
    target = os.environ.get("D3Q_RELIABILITY_REPORT")
    rows: list[dict] = []

    def record(fault: str, seconds: float | None = None, **facts) -> None:
        rows.append({"test": request.node.name, "fault": fault, "facts": facts,
                     "seconds": None if seconds is None else round(float(seconds), 2)})

    yield record
    call = getattr(request.node, "rep_call", None)
    if target and call is not None and call.passed:
        with open(target, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, default=str) + "\n")
