"""The d3q dashboard: a Textual app that owns a training run and renders its Snapshots.

The orchestrator runs in a thread worker and hands Snapshots over from that thread; the app
keeps only the newest (a slow terminal never falls behind) and a timer renders it a few times
a second by setting the panels' reactives. Keys act on the run through the orchestrator's
thread-safe controls. Nothing here imports TensorFlow, and nothing heavy loads at import.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from d3q_core.run.control import RunControl
from d3q_core.snapshot import PHASE_STARTING, Snapshot
from d3q_tui.panels.devices import DevicesPanel
from d3q_tui.panels.help import HelpScreen
from d3q_tui.panels.log import LogPanel
from d3q_tui.panels.processes import ProcessesPanel
from d3q_tui.panels.replay import ReplayPanel
from d3q_tui.panels.scores import ScoresPanel
from d3q_tui.panels.status import StatusBar

RENDER_HZ = 4
QUICK_DEATH_S = 5.0  # a preview that dies this soon never opened its window

Factory = Callable[[RunControl], Any]


def default_preview_factory(orch: RunControl) -> Any:
    from d3q_tui.preview import PreviewProcess

    return PreviewProcess(orch.env_id, orch.spec, orch.params,
                          env_kwargs=orch.config.env.kwargs)


def default_tensorboard_factory(orch: RunControl) -> Any:
    from d3q_tui.tensorboard import TensorBoardProcess

    return TensorBoardProcess(orch.run_dir / "tb", log_path=orch.run_dir / "tensorboard.log")


class D3QApp(App[int]):
    """The dashboard over a RunControl (the Orchestrator, or the tests' fake); the factories make
    the preview window and TensorBoard children, which the app starts, stops and outlives."""

    TITLE = "d3q"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    # Wide: devices, processes and replay stacked left of a tall score chart. Narrow (80x24):
    # a 2x2 grid, the chart hidden behind its numbers, simulators folded into one row.
    CSS = """
    Screen { layout: vertical; background: $surface; }
    #main { layout: grid; grid-size: 2 3; grid-columns: 2fr 3fr; grid-rows: auto auto 1fr;
            height: 1fr; }
    #main > * { background: $surface; }
    ScoresPanel { row-span: 3; }
    Screen.-narrow #main { grid-size: 2 2; grid-columns: 1fr 1fr; grid-rows: 1fr 1fr; }
    Screen.-narrow DevicesPanel { height: 1fr; }
    Screen.-narrow ProcessesPanel { height: 1fr; max-height: 100%; }
    Screen.-narrow ScoresPanel { row-span: 1; }
    Screen.-narrow ScoreChart { display: none; }
    Screen.-narrow ScoreNumbers { width: 1fr; }
    LogPanel { background: $surface; }
    Footer { background: $panel; }
    """
    BINDINGS = [
        Binding("p", "preview", "preview"),
        Binding("s", "checkpoint", "checkpoint"),
        Binding("space", "pause", "pause/resume"),
        Binding("t", "tensorboard", "TensorBoard"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit_run", "quit"),
        Binding("ctrl+c", "quit_run", "quit", show=False, priority=True),
        Binding("ctrl+q", "quit_run", "quit", show=False, priority=True),
    ]

    def __init__(self, orch: RunControl, preview_factory: Factory | None = None,
                 tensorboard_factory: Factory | None = None, exit_on_finish: bool = False,
                 start_run: bool = True):
        super().__init__()
        if start_run:
            # Textual replaces sys.stderr while it runs; multiprocessing's resource tracker
            # must start before that, or spawning children fails ('bad value(s) in
            # fds_to_keep').
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        self.orch = orch
        self.preview_factory = preview_factory or default_preview_factory
        self.tensorboard_factory = tensorboard_factory or default_tensorboard_factory
        self.exit_on_finish = exit_on_finish
        self.start_run = start_run
        self.latest: Snapshot | None = None  # written by the orchestrator's thread
        self.shown: Snapshot | None = None
        self.result: Any = None  # the RunResult once run() returned
        self.error: str | None = None  # run() raised
        self.finished = not start_run
        self.quitting = False
        self.preview: Any = None
        self.preview_started = 0.0
        self.tensorboard: Any = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Grid(id="main"):
            yield DevicesPanel(id="devices")
            yield ScoresPanel(id="scores")
            yield ProcessesPanel(id="processes")
            yield ReplayPanel(id="replay")
        yield LogPanel(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StatusBar).snapshot = Snapshot(
            elapsed=0.0, phase=PHASE_STARTING, env_id=self.orch.env_id,
            run_dir=str(self.orch.run_dir), goal=float(self.orch.goal))
        self.set_interval(1 / RENDER_HZ, self.render_latest)
        # composed on first use and kept: later `?` presses only switch screens
        self.install_screen(HelpScreen(), name="help")
        if self.start_run:
            self.run_worker(self._run_training, thread=True, name="orchestrator",
                            exit_on_error=False)

    # --- the run ----------------------------------------------------------------------------

    def _run_training(self) -> Any:
        return self.orch.run(self.receive)

    def receive(self, snapshot: Snapshot) -> None:
        """Called from the orchestrator's thread: keep only the newest, never queue."""
        self.latest = snapshot

    def render_latest(self) -> None:
        """Timer: show the newest Snapshot if it is not on screen yet."""
        s = self.latest
        if s is not None and s is not self.shown:
            self.shown = s
            self.show(s)
        self._reap_preview()
        if self.finished and self.exit_on_finish and self.is_running:
            self._leave()  # e.g. SIGTERM while the final screen was up

    def show(self, s: Snapshot) -> None:
        self.query_one(StatusBar).snapshot = s
        self.query_one(DevicesPanel).devices = s.devices
        self.query_one(ProcessesPanel).processes = s.processes
        self.query_one(ReplayPanel).replay = s.replay
        self.query_one(ScoresPanel).snapshot = s
        self.query_one(LogPanel).show(s.log)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "orchestrator":
            return
        if event.state == WorkerState.SUCCESS:
            self.result = event.worker.result
        elif event.state == WorkerState.ERROR:
            self.error = f"{type(event.worker.error).__name__}: {event.worker.error}"
        else:
            return
        self.finished = True
        self.render_latest()
        log = self.query_one(LogPanel)
        r = self.result
        if r is not None:
            verdict = "goal reached" if r.solved else f"stopped ({r.stop_reason})"
            log.note(f"run finished: {verdict}, exit code {r.exit_code}"
                     + ("" if self.quitting else "; press q to leave"),
                     "info" if r.solved or r.exit_code in (0, 130) else "warning")
            if r.error:
                log.note(r.error, "error")
        else:
            log.note(f"the run failed: {self.error}; press q to leave", "error")
        self.query_one(StatusBar).note = "finished · q to leave" if r is not None else "failed"
        if self.quitting or self.exit_on_finish:
            self._leave()

    @property
    def exit_code(self) -> int:
        return int(self.result.exit_code) if self.result is not None else 1

    def say(self, text: str, level: str = "info") -> None:
        """A line in the log: through the run while it runs (so its log file has it too),
        else straight onto the screen."""
        if self.finished:
            self.query_one(LogPanel).note(text, level)
        else:
            self.orch.log(text, level)

    # --- keys -------------------------------------------------------------------------------

    def action_checkpoint(self) -> None:
        if self.finished:
            self.say("the run has ended; its final checkpoint is written", "warning")
            return
        self.orch.request_checkpoint()

    def action_pause(self) -> None:
        if not self.finished:
            paused = not self.orch.paused
            self.orch.set_paused(paused)
            # show it now; the next Snapshot (up to 0.5 s away) will agree
            bar = self.query_one(StatusBar)
            if bar.snapshot is not None:
                bar.snapshot = dataclasses.replace(bar.snapshot, paused=paused)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen("help")

    def action_preview(self) -> None:
        if self.preview is not None and self.preview.is_alive():
            self._stop_child("preview")
            self.say("preview window closed")
            return
        try:
            self.preview = self.preview_factory(self.orch)
            self.preview.start()
        except Exception as exc:  # noqa: BLE001 - a missing display must not end the run
            self.preview = None
            self.say(f"preview failed to start: {exc}", "error")
            return
        self.preview_started = time.monotonic()
        if self.preview.pid:
            self.orch.attach("preview", self.preview.pid)
        self.say("preview window opened (close it, or press p again)")

    def action_tensorboard(self) -> None:
        if self.tensorboard is not None and self.tensorboard.is_alive():
            self._stop_child("tensorboard")
            self._set_tensorboard_url(None)
            self.say("TensorBoard stopped")
            return
        try:
            self.tensorboard = self.tensorboard_factory(self.orch)
            self.tensorboard.start()
        except Exception as exc:  # noqa: BLE001 - e.g. tensorboard not installed
            self.tensorboard = None
            self.say(f"TensorBoard failed to start: {exc}", "error")
            return
        if self.tensorboard.pid:
            self.orch.attach("tensorboard", self.tensorboard.pid)
        self._set_tensorboard_url(self.tensorboard.url)
        self.say(f"TensorBoard at {self.tensorboard.url}")

    def _set_tensorboard_url(self, url: str | None) -> None:
        self.query_one(StatusBar).tensorboard_url = url
        self.orch.tensorboard_url = url  # the run's Snapshots carry it to every face

    def action_quit_run(self) -> None:
        if self.finished:
            self._leave()
        elif self.quitting:
            self.say("stopping at once: no final checkpoint", "warning")
            self.orch.abort()
        else:
            self.quitting = True
            self.query_one(StatusBar).note = "stopping…"
            self.say("stopping: final checkpoint, then every process exits "
                     "(q again: at once)")
            self.orch.request_stop("quit")

    # --- children ---------------------------------------------------------------------------

    def _stop_child(self, role: str) -> None:
        child = getattr(self, role)
        if child is None:
            return
        setattr(self, role, None)
        try:
            child.stop()
        finally:
            self.orch.detach(role)

    def _reap_preview(self) -> None:
        """A preview window the user closed ends its process; forget it."""
        if self.preview is None or self.preview.is_alive():
            return
        quick = time.monotonic() - self.preview_started < QUICK_DEATH_S
        self._stop_child("preview")
        if quick:
            self.say(f"the preview window closed at once (no display?); see "
                     f"{self.orch.run_dir}/log.txt", "warning")
        else:
            self.say("preview window closed")

    def on_unmount(self) -> None:
        """Leaving by any path (an exception included) must not leave the run going: its
        thread would keep the process alive."""
        if not self.finished:
            self.orch.request_stop("quit")
        for role in ("preview", "tensorboard"):
            self._stop_child(role)

    def _leave(self) -> None:
        for role in ("preview", "tensorboard"):
            self._stop_child(role)
        self.exit(self.exit_code, return_code=self.exit_code)


def run_tui(orch: RunControl) -> int:
    """Run the dashboard until the user leaves; returns the run's exit code. SIGTERM, SIGHUP
    (a closed terminal) or a SIGINT from outside (Ctrl-C in the terminal is a key) stops the
    run gracefully and leaves once every process has exited; a second one stops at once."""
    import os
    import signal
    import threading
    import time

    from d3q_core.backends.local.process import CHILD_OUTPUT_ENV

    # The preview writes to the run's log, as the roles do: a stray warning on the terminal
    # would tear the screen.
    os.environ[CHILD_OUTPUT_ENV] = str(orch.run_dir / "log.txt")
    app = D3QApp(orch)

    signals = {"n": 0}

    def leave_without_a_terminal() -> None:
        """After SIGHUP the terminal is gone and Textual cannot restore it (its writes to the
        dead tty hang): once the run has finished, leave anyway."""
        while not app.finished:
            time.sleep(0.1)
        time.sleep(2.0)
        for role in ("preview", "tensorboard"):
            app._stop_child(role)
        os._exit(app.exit_code)

    def on_signal(signum: int, _frame: Any) -> None:
        signals["n"] += 1
        app.exit_on_finish = True
        if signum == signal.SIGHUP and signals["n"] == 1:
            threading.Thread(target=leave_without_a_terminal, name="hangup", daemon=True).start()
        if signals["n"] == 1:
            orch.log(f"{signal.Signals(signum).name}: stopping (checkpoint, then exit)",
                     "warning")
            orch.request_stop("interrupted")
        else:
            orch.log(f"second signal ({signal.Signals(signum).name}): stopping now", "warning")
            orch.abort()

    old = {sig: signal.signal(sig, on_signal)
           for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        code = app.run()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for role in ("preview", "tensorboard"):
            app._stop_child(role)
    return code if isinstance(code, int) else app.exit_code
