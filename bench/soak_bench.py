"""Soak: a long default run with an unreachable goal while simulator 0 is killed every 30 s and
the evaluator every 2 minutes. Not part of `make bench` (20 minutes):

    python -m bench soak --minutes 20

Checks, from outside as an operator would: the run ends at its time limit with result.json
complete, no process outlives it, and every role's memory stays flat after the first minute
(the roles that are never restarted: their RSS over the run; the restarted ones: each
incarnation's RSS just before it is killed, i.e. after it has run a while).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def _roles(proc: psutil.Process) -> dict[str, psutil.Process]:
    out = {}
    for child in proc.children(recursive=True):
        try:
            title = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if title.startswith("d3q: "):
            out[title[5:].strip()] = child
    return out


def _rss(p: psutil.Process) -> int | None:
    try:
        return p.memory_info().rss
    except psutil.Error:
        return None


def run(minutes: float = 20.0, sim_every: float = 30.0, eval_every: float = 120.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="d3q-soak-") as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "d3q_tui.cli", "--no-ui", "--run-dir", str(run_dir),
               "--set", "stop.goal=100000", "--set", f"stop.max_seconds={minutes * 60:.0f}"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        me = psutil.Process(proc.pid)
        seen: dict[int, float] = {}
        series: dict[str, list[tuple[float, int]]] = {}  # role -> (t, rss), never restarted
        before_kill: dict[str, list[int]] = {"simulator 0": [], "evaluator": []}
        t0 = time.monotonic()
        next_sim, next_eval, kills = sim_every, eval_every, {"simulator 0": 0, "evaluator": 0}
        while proc.poll() is None:
            t = time.monotonic() - t0
            roles = _roles(me)
            for p in roles.values():
                try:
                    seen[p.pid] = p.create_time()
                except psutil.Error:
                    pass
            for name in ("learner", "replay"):
                if name in roles and (r := _rss(roles[name])) is not None:
                    series.setdefault(name, []).append((t, r))
            if (r := _rss(me)) is not None:
                series.setdefault("orchestrator", []).append((t, r))
            for name, due in (("simulator 0", t >= next_sim), ("evaluator", t >= next_eval)):
                if due and name in roles and t < minutes * 60 - 20:
                    if (r := _rss(roles[name])) is not None:
                        before_kill[name].append(r)
                    try:
                        roles[name].kill()
                        kills[name] += 1
                    except psutil.Error:
                        pass
                    if name == "simulator 0":
                        next_sim += sim_every
                    else:
                        next_eval += eval_every
            time.sleep(2.0)
        code = proc.returncode
        time.sleep(3.0)
        left = []
        for pid, created in seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(pid)
            except psutil.NoSuchProcess:
                pass
        result = json.loads((run_dir / "result.json").read_text())
    flat = {}
    for name, points in series.items():
        after = [r for t, r in points if t >= 60.0]
        if after:
            flat[name] = {"min_mib": min(after) / 2**20, "max_mib": max(after) / 2**20,
                          "spread": (max(after) - min(after)) / min(after)}
    for name, values in before_kill.items():
        steady = values[1:]  # the first incarnation's includes nothing odd, but start with 2nd
        if len(steady) >= 2:
            flat[f"{name} (each incarnation before its kill)"] = {
                "min_mib": min(steady) / 2**20, "max_mib": max(steady) / 2**20,
                "spread": (max(steady) - min(steady)) / min(steady)}
    out = {"minutes": minutes, "exit_code": code, "stop_reason": result["stop_reason"],
           "restarts": result.get("restarts"), "kills": kills, "processes_left": len(left),
           "result_keys": sorted(result), "learner_samples": result["learner_samples"],
           "env_steps": result["env_steps"], "evals": len(result["evals"]), "memory": flat,
           "median_learner_rss_mib": statistics.median(r for _, r in series["learner"]) / 2**20
           if series.get("learner") else None}
    print(f"exit {code} ({result['stop_reason']}), kills {kills}, restarts "
          f"{result.get('restarts')}, processes left {len(left)}, "
          f"{result['learner_samples']:,} learner samples, {len(result['evals'])} evaluations")
    for name, f in flat.items():
        print(f"  {name}: RSS {f['min_mib']:.0f}-{f['max_mib']:.0f} MiB after the first minute "
              f"(spread {f['spread']:.1%}, target < 5%)")
    return out
