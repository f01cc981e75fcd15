"""D3Q_FAULTS is read only where fault injection is enabled, and refused when malformed."""

from __future__ import annotations

import pytest

from d3q_core import faults


def test_faults_are_ignored_unless_enabled_and_the_run_says_so(monkeypatch):
    monkeypatch.setenv("D3Q_FAULTS", "learner_sleep=0.5")
    monkeypatch.delenv(faults.ENABLE, raising=False)
    got, line = faults.check_environment()
    assert got == {} and "ignored" in line
    monkeypatch.setenv(faults.ENABLE, "1")
    got, line = faults.check_environment()
    assert got == {"learner_sleep": 0.5} and line.startswith("fault injection active")


@pytest.mark.parametrize(("text", "fragment"), [
    ("bogus=1", "unknown fault 'bogus'"),
    ("learner_sleep=soon", "expected a number"),
])
def test_a_malformed_value_is_one_line(monkeypatch, text, fragment):
    monkeypatch.setenv("D3Q_FAULTS", text)
    monkeypatch.setenv(faults.ENABLE, "1")
    with pytest.raises(faults.FaultSpecError, match=fragment) as info:
        faults.check_environment()
    assert "\n" not in str(info.value)


def test_nothing_set_is_nothing_to_say(monkeypatch):
    monkeypatch.delenv("D3Q_FAULTS", raising=False)
    assert faults.check_environment() == ({}, None)
