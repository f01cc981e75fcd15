"""Pilot tests: each key does what the footer says, Snapshot values reach the right widgets,
and leaving (by q, Ctrl-C, the run's end or its failure) ends the run and the children."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console
from textual import events

from d3q_tui.app import D3QApp
from d3q_tui.panels.help import HelpScreen
from tests.tui.fake_run import FakeChild, FakeOrchestrator


def make_app(preview_factory=None, tensorboard_factory=None, exit_on_finish=False, **kw):
    orch = FakeOrchestrator(**kw)
    preview, tb = FakeChild(pid=4242), FakeChild(pid=4343)
    app = D3QApp(orch, preview_factory=preview_factory or (lambda o: preview),
                 tensorboard_factory=tensorboard_factory or (lambda o: tb),
                 exit_on_finish=exit_on_finish)
    return app, orch, preview, tb


async def until(pilot, condition, what: str, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_frames(pilot, app, t: int) -> None:
    await until(pilot, lambda: app.shown is not None and app.shown.elapsed >= t / 4,
                f"snapshot {t} on screen")
    await pilot.pause(0.05)  # one refresh after the reactives changed


def text_of(widget) -> str:
    """What a panel shows, as plain text, rendered at its current width."""
    console = Console(width=max(20, widget.content_size.width), file=io.StringIO(),
                      record=True, color_system=None)
    console.print(widget.render())
    return console.export_text()


def log_text(app) -> str:
    return app.query_one("#log").text


async def test_snapshot_values_reach_the_widgets():
    app, orch, *_ = make_app(frames=30)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_frames(pilot, app, 29)
        s = app.shown
        replay = text_of(app.query_one("#replay"))
        assert f"{s.replay.size / 1000:.1f}k/100k" in replay
        assert f"ratio {s.replay.sample_rate / s.replay.insert_rate:.1f}" in replay
        procs = text_of(app.query_one("#processes"))
        for role in ("orchestrator", "learner", "replay", "simulator 0", "simulator 1",
                     "evaluator"):
            assert role in procs
        assert "1001" in procs and "smp/s" in procs and "6.50k stp/s" in procs
        numbers = text_of(app.query_one("#numbers"))
        assert f"{s.evals[-1].mean:.1f}" in numbers and "475" in numbers
        assert f"{s.best_eval:.1f}" in numbers
        devices = text_of(app.query_one("#devices"))
        assert "cpu0" in devices and "cpu1" in devices and "no GPU" in devices
        assert "1 replica on cpu:0" in devices
        status = str(app.query_one("#status").render())
        assert "CartPole-v1" in status and "training" in status and "00:07" in status
        log = app.query_one("#log")
        assert log.last_seq == s.log[-1].seq
        assert f"eval {len(s.evals)}: mean" in log_text(app)
        assert app.query_one("#chart").display  # wide: the chart is on screen


def log_screen(app) -> str:
    """The log panel's visible lines."""
    return text_of(app.query_one("#log"))


async def test_log_follows_the_newest_line_and_the_wheel_scrolls_back():
    app, orch, *_ = make_app(frames=45, period=0.05)  # then the stream pauses
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_frames(pilot, app, 30)
        log = app.query_one("#log")
        newest = log.entries[-1].plain
        assert newest in log_screen(app)  # newest at the bottom
        x, y = log.region.x + 5, log.region.y + 3
        await pilot._post_mouse_events([events.MouseScrollUp], offset=(x, y))
        await pilot._post_mouse_events([events.MouseScrollUp], offset=(x, y))
        await pilot.pause(0.05)
        assert log.back >= 6 and "lines back" in log.border_subtitle  # + lines since
        held = log_screen(app)
        assert newest not in held
        await wait_frames(pilot, app, 44)  # new lines arrive: the view stays where it was
        assert log.entries[-1].plain != newest and log_screen(app) == held
        for _ in range(log.back // 3 + 1):
            await pilot._post_mouse_events([events.MouseScrollDown], offset=(x, y))
        await pilot.pause(0.1)
        assert log.back == 0 and log.border_subtitle == ""
        assert log.entries[-1].plain in log_screen(app)


async def test_gpu_rows_and_learner_devices():
    app, *_ = make_app(frames=5, gpus=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_frames(pilot, app, 4)
        devices = text_of(app.query_one("#devices"))
        assert "gpu0" in devices and "gpu1" in devices and "54°C" in devices
        assert "9.0G/80.0G" in devices and "2 replicas on gpu:0 8.0G, gpu:1 8.0G" in devices
        assert "H100" in app.query_one("#devices").border_subtitle


async def test_narrow_terminal_hides_the_chart_and_keeps_the_numbers():
    app, *_ = make_app(frames=30)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_frames(pilot, app, 29)
        assert app.screen.has_class("-narrow")
        assert not app.query_one("#chart").display
        numbers = text_of(app.query_one("#numbers"))
        assert "last mean" in numbers and "env steps" in numbers
        for panel in ("#devices", "#processes", "#replay", "#scores", "#log"):
            region = app.query_one(panel).region
            assert region.width > 0 and region.height >= 5, panel
        await pilot.resize_terminal(160, 50)
        await pilot.pause(0.1)
        assert app.query_one("#chart").display and not app.screen.has_class("-narrow")


async def test_keys_do_what_the_footer_says():
    app, orch, preview, tb = make_app(frames=1000)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_frames(pilot, app, 2)
        await pilot.press("space")
        assert orch.calls[-1] == ("pause", True)
        await until(pilot, lambda: "PAUSED" in str(app.query_one("#status").render()),
                    "the paused marker")
        await pilot.press("space")
        assert ("pause", False) in orch.calls
        await pilot.press("s")
        assert ("checkpoint",) in orch.calls
        await until(pilot, lambda: "ckpt-000000102400.npz" in log_text(app), "checkpoint log")

        await pilot.press("p")
        assert preview.alive and orch.attached["preview"] == 4242
        await pilot.press("p")
        assert not preview.alive and "preview" not in orch.attached

        await pilot.press("t")
        assert tb.alive and orch.attached["tensorboard"] == 4343
        assert orch.tensorboard_url == tb.url
        assert tb.url in str(app.query_one("#status").render())
        await until(pilot, lambda: f"TensorBoard at {tb.url}" in log_text(app), "TB URL")
        await pilot.press("t")
        assert not tb.alive and orch.tensorboard_url is None

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

        await pilot.press("t", "p")  # left running: quitting must stop both
        await pilot.press("q")
        assert ("stop", "quit") in orch.calls
        await until(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_code == 130 and app.return_value == 130
    assert not tb.alive and not preview.alive and orch.attached == {}


@pytest.mark.parametrize("key", ["ctrl+c", "ctrl+q"])
async def test_ctrl_c_quits_like_q(key):
    app, orch, *_ = make_app(frames=1000)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(pilot, app, 1)
        await pilot.press(key)
        assert ("stop", "quit") in orch.calls
        await until(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_value == 130


async def test_a_finished_run_stays_on_screen_until_q():
    app, orch, *_ = make_app(frames=1000, finish_after=6)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.finished, "the run to finish")
        await pilot.pause(0.3)
        assert app.is_running
        status = str(app.query_one("#status").render())
        assert "goal reached" in status and "q to leave" in status
        assert "run finished: goal reached, exit code 0" in log_text(app)
        await pilot.press("s")  # no run to checkpoint: said, not crashed
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_value == 0 and ("stop", "quit") not in orch.calls


async def test_exit_on_finish_leaves_by_itself():
    app, *_ = make_app(frames=1000, finish_after=3, exit_on_finish=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_value == 0


async def test_a_failing_run_is_reported_and_exits_1():
    app, *_ = make_app(frames=1000, fail=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.finished, "the run to fail")
        await pilot.pause(0.1)
        assert "replay service died" in log_text(app)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_value == 1


async def test_child_failures_are_logged_not_fatal():
    def broken(_orch):
        raise RuntimeError("the tensorboard package is not installed")

    app, orch, preview, _ = make_app(frames=1000, tensorboard_factory=broken)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_frames(pilot, app, 1)
        await pilot.press("t")
        await until(pilot, lambda: "not installed" in log_text(app), "the error in the log")
        await pilot.press("p")
        preview.alive = False  # the window died at once (no display)
        await until(pilot, lambda: "no display?" in log_text(app), "the preview warning")
        assert app.preview is None and "preview" not in orch.attached
        assert app.is_running


async def test_only_the_newest_snapshot_is_rendered():
    app, orch, *_ = make_app(frames=1000, period=10.0)  # the fake stays quiet
    async with app.run_test(size=(120, 40)) as pilot:
        from tests.tui.fake_run import make_snapshot

        shown = []
        app.show = shown.append  # type: ignore[method-assign]
        for t in range(50):  # a burst faster than any terminal
            app.receive(make_snapshot(t))
        await until(pilot, lambda: shown, "a render")
        await pilot.pause(0.5)
        assert [s.elapsed for s in shown] == [49 / 4]  # the newest, once


@pytest.mark.parametrize(("modules", "banned"), [
    ("d3q_tui.app, d3q_tui.preview, d3q_tui.tensorboard",
     ("tensorflow", "keras", "pygame", "gymnasium", "tensorboard")),  # heavy ones load lazily
    ("d3q_tui.app, d3q_core.run.orchestrator", ("tensorflow", "keras")),
])
def test_the_ui_never_imports_tensorflow(modules, banned):
    code = (f"import sys, {modules}\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {banned!r})\n"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_the_chart_is_redrawn_at_most_once_a_second_and_at_the_end():
    import dataclasses

    from d3q_core.snapshot import PHASE_GOAL
    from d3q_tui.panels.scores import ScoreChart, ScoresPanel
    from tests.tui.fake_run import make_snapshot

    app, orch, *_ = make_app(frames=1000, period=10.0)  # the fake stays quiet
    async with app.run_test(size=(160, 50)) as pilot:
        app.show = lambda s: None  # type: ignore[method-assign]  # drive the panel by hand
        panel, chart = app.query_one(ScoresPanel), app.query_one(ScoreChart)
        plotted = []
        chart.plot_evals = lambda evals, goal: plotted.append(len(evals))  # type: ignore
        for t in range(10, 31):  # a new evaluation in every quarter-second snapshot
            panel.snapshot = make_snapshot(t)
        assert len(plotted) == 6  # elapsed 2.5 s .. 7.5 s: one redraw per second of run time
        last = make_snapshot(31)
        panel.snapshot = last
        assert len(plotted) == 6
        panel.snapshot = dataclasses.replace(last, phase=PHASE_GOAL)
        assert plotted[-1] == len(last.evals)  # the end is always drawn
        await pilot.pause(0.05)


def test_the_orchestrator_and_the_fake_satisfy_one_run_control_protocol(tmp_path):
    """The dashboard's contract lives in RunControl, not in the fake: both implement it, with
    the same method signatures."""
    import inspect

    from d3q_core.config import build_config
    from d3q_core.run.control import RunControl
    from d3q_core.run.orchestrator import Orchestrator
    from tests.tui.fake_run import FakeOrchestrator

    orch = Orchestrator(build_config(None, [f"run.root={tmp_path}"]))
    try:
        fake = FakeOrchestrator()
        assert isinstance(orch, RunControl) and isinstance(fake, RunControl)
        for name in ("run", "request_stop", "abort", "request_checkpoint", "set_paused", "log",
                     "attach", "detach"):
            want = list(inspect.signature(getattr(RunControl, name)).parameters)[1:]
            for impl in (orch, fake):
                assert list(inspect.signature(getattr(impl, name)).parameters) == want, \
                    (type(impl).__name__, name)
    finally:
        orch.backend.close()


async def test_markup_in_a_path_or_a_log_line_is_shown_as_written():
    import dataclasses

    from d3q_core.snapshot import LogLine
    from d3q_tui.panels.status import StatusBar
    from tests.tui.fake_run import make_snapshot

    app, orch, *_ = make_app(frames=1000, period=10.0)  # the fake stays quiet
    async with app.run_test(size=(160, 50)) as pilot:
        odd = "runs/a[/]b [bold]x[/bold]"
        s = dataclasses.replace(make_snapshot(20), run_dir=odd,
                                log=(LogLine(1, 1.0, "error", f"cannot write {odd}/log.txt"),))
        app.receive(s)
        await until(pilot, lambda: "[/]" in log_text(app), "the odd line in the log")
        assert f"cannot write {odd}/log.txt" in log_text(app)
        assert "[/]" in text_of(app.query_one(StatusBar))
