"""The Python API: `from d3q_core import Config, train, load_policy`, as the README shows it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO, Watched


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md has no api-example block"
    return match.group(1)


def test_the_readme_example_trains_and_acts_without_tensorflow(tmp_path):
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    script = tmp_path / "example.py"
    # and then: this process (the orchestrator, the policy) never loaded TensorFlow
    script.write_text(code + "\nimport sys\nassert 'tensorflow' not in sys.modules\n")
    w = Watched([], cwd=tmp_path, command=[sys.executable, str(script)])
    rc, out, err = w.wait(240)
    assert rc == 0, err[-2000:]
    assert w.survivors() == []
    result = json.loads((tmp_path / "runs/from-python/result.json").read_text())
    assert result["solved"] and result["exit_code"] == 0
    first, second = out.strip().splitlines()[-2:]
    assert first.split()[0] == "0"  # result.exit_code
    assert float(first.split()[1]) == pytest.approx(result["confirmed_eval_mean"])
    assert second.split()[0] in ("0", "1")  # policy.act(obs): an action of CartPole


def test_bad_settings_raise_before_anything_starts(tmp_path):
    script = (
        "from d3q_core import ConfigError, train\n"
        "try:\n"
        "    train({'replay': {'capacity': 0}}, run_dir='r')\n"
        "except ConfigError as exc:\n"
        "    print('refused:', exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused: replay.capacity = 0")
    assert not (tmp_path / "r").exists()


def test_importing_the_api_stays_light():
    proc = subprocess.run([sys.executable, "-c",
                           "import sys, d3q_core; d3q_core.Config; d3q_core.load_policy; "
                           "print(sorted(m for m in ('tensorflow', 'keras', 'textual') "
                           "if m in sys.modules))"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr
