"""The dashboard as a person meets it: `d3q-tui` in a real terminal (tmux), training CartPole.

- first frame: seconds from the command to the dashboard's status bar on screen
- keys under load: `?` until the help text is on screen (then escape), `space` until PAUSED
  shows (then space again), each repeated, polled through `tmux capture-pane`
- the UI process's CPU (Textual and the orchestrator thread) over a window of training,
  as % of one core, against the target of 15%
- `q` at the end: seconds until every d3q process is gone

Needs tmux; skipped (with a message) without it.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

SESSION = "d3q-dashboard-bench"
COLS, ROWS = 160, 50


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def _screen() -> str:
    return _tmux("capture-pane", "-p", "-t", SESSION)


def _wait_for(text: str, timeout: float, poll: float = 0.01) -> float | None:
    """Seconds until `text` is on screen, or None."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if text in _screen():
            return time.perf_counter() - t0
        time.sleep(poll)
    return None


def _wait_gone(text: str, timeout: float) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout and text in _screen():
        time.sleep(0.01)


def _ui_process(pane_pid: int) -> psutil.Process | None:
    """d3q-tui: the pane's process itself, or one of its children when a shell runs it (whose
    own command line names d3q-tui too, inside its -c string)."""
    pane = psutil.Process(pane_pid)
    for p in [pane, *pane.children(recursive=True)]:
        try:
            if any(Path(arg).name == "d3q-tui" for arg in p.cmdline()[:2]):
                return p
        except psutil.Error:
            continue
    return None


def _key_latency(key: str, shown: str, undo: str, repeats: int) -> list[float]:
    """Milliseconds from sending `key` to `shown` on screen; `undo` puts the screen back."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _tmux("send-keys", "-t", SESSION, key)
        if _wait_for(shown, 5.0) is not None:
            out.append((time.perf_counter() - t0) * 1000.0)
        _tmux("send-keys", "-t", SESSION, undo)
        _wait_gone(shown, 5.0)
        time.sleep(0.7)
    return out


def run(quick: bool = False, settle: float = 12.0) -> dict:
    if shutil.which("tmux") is None:
        print("tmux not found: dashboard figures skipped")
        return {"skipped": "no tmux"}
    exe = Path(sys.executable).with_name("d3q-tui")
    run_dir = Path(tempfile.mkdtemp(prefix="d3q-dash-")) / "run"
    cmd = (f"{exe} --run-dir {run_dir} --set stop.goal=100000 --set stop.max_seconds=120; "
           "sleep 30")
    _tmux("kill-session", "-t", SESSION)
    t0 = time.perf_counter()
    _tmux("new-session", "-d", "-s", SESSION, "-x", str(COLS), "-y", str(ROWS), cmd)
    first = _wait_for(str(run_dir), 30.0, poll=0.01)
    first_frame = (time.perf_counter() - t0) if first is not None else None
    shell = int(_tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").strip())
    result: dict = {"first_frame_s": first_frame, "size": f"{COLS}x{ROWS}"}
    try:
        if _wait_for("training", 90.0, poll=0.2) is None:
            result["error"] = "training never started"
            return result
        time.sleep(settle)  # past the learner's start-up, into steady training
        ui = _ui_process(shell)
        if ui is None:
            result["error"] = "d3q-tui process not found"
            return result
        window = 5.0 if quick else 10.0
        c0 = sum(ui.cpu_times()[:2])
        load0 = psutil.cpu_times()
        time.sleep(window)
        ui_cpu = (sum(ui.cpu_times()[:2]) - c0) / window * 100.0
        load1 = psutil.cpu_times()
        busy = sum(load1) - sum(load0)
        idle = (load1.idle - load0.idle) / busy if busy else 0.0
        reps = 5 if quick else 10
        help_ms = _key_latency("?", "this help", "Escape", reps)
        pause_ms = _key_latency("Space", "PAUSED", "Space", reps)
        result.update(
            ui_cpu_percent=ui_cpu, machine_busy_percent=(1.0 - idle) * 100.0,
            help_ms_median=statistics.median(help_ms) if help_ms else None,
            help_ms_all=help_ms,
            pause_ms_median=statistics.median(pause_ms) if pause_ms else None,
        )
        procs = [ui, *ui.children(recursive=True)]
        t_q = time.perf_counter()
        _tmux("send-keys", "-t", SESSION, "q")
        gone, alive = psutil.wait_procs(procs, timeout=30.0)
        result["quit_s"] = time.perf_counter() - t_q
        result["left_running"] = len(alive)
    finally:
        _tmux("kill-session", "-t", SESSION)
    print(f"first frame: {first_frame:.2f} s" if first_frame else "first frame: not seen")
    print(f"UI process CPU while training: {result['ui_cpu_percent']:.1f}% of one core "
          f"(target < 15%; machine {result['machine_busy_percent']:.0f}% busy)")
    print(f"'?' -> help on screen: median {result['help_ms_median']:.0f} ms "
          f"(target < 100 ms; all: {', '.join(f'{x:.0f}' for x in help_ms)})")
    print(f"space -> PAUSED on screen: median {result['pause_ms_median']:.0f} ms")
    print(f"q -> every process gone: {result['quit_s']:.1f} s, left running: "
          f"{result['left_running']}")
    return result


if __name__ == "__main__":
    run()
