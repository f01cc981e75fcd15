"""The rules of the house, checked on the source: dependencies point down, no role knows its
transport, the run knows no backend's internals, and only the learner's modules import
TensorFlow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "d3q_core"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def files(package: str) -> list[Path]:
    return sorted((CORE / package).rglob("*.py"))


def offending(paths: list[Path], banned: tuple[str, ...]) -> list[str]:
    return [f"{p.relative_to(CORE)}: {m}" for p in paths for m in sorted(imports(p))
            if m.split(".")[0] in banned or any(m.startswith(b + ".") or m == b
                                                  for b in banned)]


def test_no_role_imports_a_transport():
    assert offending(files("roles"), ("multiprocessing", "socket", "fcntl", "queue",
                                      "d3q_core.backends")) == []


def test_no_run_module_imports_a_backends_internals():
    public = (": d3q_core.backends.make_backend", ": d3q_core.backends.preflight",
              ": d3q_core.backends")  # the package's face: which backend, can it start
    bad = [line for line in offending(files("run"), ("d3q_core.backends",))
           if not line.endswith(public)]
    assert bad == []


def test_algo_has_no_processes_and_no_transport():
    assert offending(files("algo"), ("multiprocessing", "socket", "fcntl", "d3q_core.roles",
                                     "d3q_core.run", "d3q_core.backends")) == []


@pytest.mark.parametrize("package", ["algo", "roles", "run", "backends", "storage"])
def test_nothing_in_the_engine_imports_a_face(package):
    assert offending(files(package), ("d3q_tui",)) == []


def test_only_the_learners_modules_import_tensorflow():
    allowed = {"algo/model.py", "algo/trainer.py", "algo/devices.py", "algo/reference.py",
               "roles/learner.py",
               "tools/export.py"}  # the export command, only when it runs
    users = {str(p.relative_to(CORE)) for p in CORE.rglob("*.py")
             if offending([p], ("tensorflow", "keras"))
             or any(m.startswith(("d3q_core.algo.trainer", "d3q_core.algo.model",
                                  "d3q_core.algo.devices")) for m in imports(p))}
    assert users <= allowed, users - allowed
