"""The d3q dashboard: a Textual app that owns a training run and renders its Snapshots.

The orchestrator runs in a thread worker and hands over Snapshots from that thread; the app
keeps only the newest one (a slow terminal never falls behind) and a timer renders it a few
times a second. Keys act on the run through the orchestrator's thread-safe controls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from d3q_core.snapshot import PHASE_STARTING, Snapshot
from d3q_tui.panels.devices import DevicesPanel
from d3q_tui.panels.help import HelpScreen
from d3q_tui.panels.log import LogPanel
from d3q_tui.panels.processes import ProcessesPanel
from d3q_tui.panels.replay import ReplayPanel
from d3q_tui.panels.scores import ScoresPanel
from d3q_tui.panels.status import StatusBar

REFRESH_SECONDS = 0.25


def default_preview_factory(orch: Any) -> Any:
    from d3q_tui.preview import PreviewProcess

    return PreviewProcess(orch.env_id, orch.spec, orch.params)


def default_tensorboard_factory(orch: Any) -> Any:
    from d3q_tui.tensorboard import TensorBoardProcess

    return TensorBoardProcess(orch.run_dir / "tb")


class D3QApp(App):
    TITLE = "d3q"
    CSS = """
    Screen { layout: vertical; }
    #panels { grid-size: 2 2; grid-columns: 9fr 11fr; grid-rows: 2fr 3fr; height: 1fr; }
    #panels > * { height: 100%; }
    """
    BINDINGS = [
        Binding("p", "preview", "preview"),
        Binding("s", "checkpoint", "checkpoint"),
        Binding("space", "pause", "pause/resume"),
        Binding("t", "tensorboard", "TensorBoard"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit_run", "quit"),
        Binding("ctrl+c", "quit_run", "quit", show=False, priority=True),
    ]

    def __init__(self, orch: Any, preview_factory: Callable[[Any], Any] | None = None,
                 tensorboard_factory: Callable[[Any], Any] | None = None,
                 exit_on_finish: bool = False, start_run: bool = True):
        super().__init__()
        self.orch = orch
        self.preview_factory = preview_factory or default_preview_factory
        self.tensorboard_factory = tensorboard_factory or default_tensorboard_factory
        self.exit_on_finish = exit_on_finish
        self.start_run = start_run
        self.latest: Snapshot | None = None  # written by the orchestrator's thread
        self.shown: Snapshot | None = None
        self.result: Any = None
        self.preview: Any = None
        self.tensorboard: Any = None
        self.quitting = False
        self.note = ""

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Grid(id="panels"):
            yield DevicesPanel(id="devices")
            yield ScoresPanel(id="scores")
            yield ProcessesPanel(id="processes")
            yield ReplayPanel(id="replay")
        yield LogPanel(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self.render_latest)
        self.query_one(StatusBar).show(Snapshot(
            elapsed=0.0, phase=PHASE_STARTING, env_id=self.orch.env_id,
            run_dir=str(self.orch.run_dir), goal=getattr(self.orch, "goal", 0.0)))
        if self.start_run:
            self.run_worker(self.run_training, thread=True, name="orchestrator",
                            exit_on_error=False)

    # --- the run ----------------------------------------------------------------------------

    def run_training(self) -> Any:
        return self.orch.run(self.receive)

    def receive(self, snapshot: Snapshot) -> None:
        """Called from the orchestrator's thread: keep only the newest."""
        self.latest = snapshot

    def render_latest(self) -> None:
        s = self.latest
        if s is None or s is self.shown:
            return
        self.shown = s
        self.query_one(StatusBar).show(s, self.note)
        self.query_one(DevicesPanel).show(s.devices)
        self.query_one(ProcessesPanel).show(s.processes)
        self.query_one(ReplayPanel).show(s.replay)
        self.query_one(ScoresPanel).show(s)
        self.query_one(LogPanel).show(s.log)
        self._reap_children()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "orchestrator":
            return
        if event.state == WorkerState.SUCCESS:
            self.result = event.worker.result
            self.render_latest()
            log = self.query_one(LogPanel)
            r = self.result
            verdict = "goal reached" if r.solved else f"stopped: {r.stop_reason}"
            log.note(f"run finished ({verdict}); press q to leave")
            self.note = "finished: press q to leave"
            self._refresh_status()
            if self.quitting or self.exit_on_finish:
                self._leave()
        elif event.state == WorkerState.ERROR:
            self.result = None
            self.query_one(LogPanel).note(f"orchestrator failed: {event.worker.error}", "error")
            if self.quitting or self.exit_on_finish:
                self._leave()

    def _refresh_status(self) -> None:
        if self.shown is not None:
            self.query_one(StatusBar).show(self.shown, self.note)

    # --- keys -------------------------------------------------------------------------------

    def action_checkpoint(self) -> None:
        self.orch.request_checkpoint()
        self.query_one(LogPanel).note("checkpoint requested")

    def action_pause(self) -> None:
        self.orch.set_paused(not self.orch.paused)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_preview(self) -> None:
        log = self.query_one(LogPanel)
        if self.preview is not None and self.preview.is_alive():
            self.preview.stop()
            self.orch.detach("preview")
            self.preview = None
            log.note("preview closed")
            return
        self.preview = self.preview_factory(self.orch)
        self.preview.start()
        if self.preview.pid:
            self.orch.attach("preview", self.preview.pid)
        log.note("preview window opened (close it or press p again)")

    def action_tensorboard(self) -> None:
        log = self.query_one(LogPanel)
        if self.tensorboard is not None and self.tensorboard.is_alive():
            self.tensorboard.stop()
            self.orch.detach("tensorboard")
            self.orch.tensorboard_url = None
            self.tensorboard = None
            log.note("TensorBoard stopped")
            return
        self.tensorboard = self.tensorboard_factory(self.orch)
        self.tensorboard.start()
        if self.tensorboard.pid:
            self.orch.attach("tensorboard", self.tensorboard.pid)
        self.orch.tensorboard_url = self.tensorboard.url
        log.note(f"TensorBoard at {self.tensorboard.url}")

    def action_quit_run(self) -> None:
        if self.result is not None or not self.start_run:
            self._leave()
            return
        if self.quitting:
            return
        self.quitting = True
        self.note = "stopping…"
        self.query_one(LogPanel).note("stopping: final checkpoint, then every process exits")
        self.orch.request_stop("quit")
        self._refresh_status()

    def _reap_children(self) -> None:
        """A preview window closed by the user ends its process; forget it."""
        if self.preview is not None and not self.preview.is_alive():
            self.orch.detach("preview")
            self.preview = None
            self.query_one(LogPanel).note("preview window closed")

    def _leave(self) -> None:
        for child in (self.preview, self.tensorboard):
            if child is not None:
                child.stop()
        self.exit(self.result.exit_code if self.result is not None else 1)


def run_tui(orch: Any) -> int:
    """Run the dashboard until the user leaves; returns the run's exit code. SIGTERM stops
    the run gracefully and leaves once every process has exited."""
    import os
    import signal
    from multiprocessing import resource_tracker

    from d3q_core.proc import CHILD_OUTPUT_ENV

    # Textual replaces sys.stderr; multiprocessing's tracker must start while it is real.
    resource_tracker.ensure_running()
    os.environ[CHILD_OUTPUT_ENV] = str(orch.run_dir / "children.log")
    app = D3QApp(orch)

    def on_term(_signum: int, _frame: Any) -> None:
        app.exit_on_finish = True
        orch.request_stop("interrupted")

    signal.signal(signal.SIGTERM, on_term)
    code = app.run()
    for child in (app.preview, app.tensorboard):
        if child is not None:
            child.stop()
    if isinstance(code, int):
        return code
    return app.result.exit_code if app.result is not None else 1
