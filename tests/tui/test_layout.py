"""Layout snapshots (pytest-textual-snapshot) of the dashboard fed a recorded Snapshot stream.

Regenerate after an intended change: pytest tests/tui/test_layout.py --snapshot-update
"""

from __future__ import annotations

import pytest

from d3q_tui.app import D3QApp
from tests.tui.fake_run import FakeOrchestrator, stream


class RecordedApp(D3QApp):
    """The dashboard after `frames` recorded Snapshots: no run, no timers racing the picture."""

    def __init__(self, frames: int = 41, gpus: bool = False, cores: int = 2,
                 cluster: bool = False):
        super().__init__(FakeOrchestrator(), start_run=False)
        self.recorded = list(stream(frames, gpus=gpus, cores=cores, cluster=cluster))

    def on_ready(self) -> None:  # not on_mount: Textual also calls the base class's on_mount
        for s in self.recorded:  # every one, so sparklines have their history
            self.show(s)
        self.latest = self.shown = self.recorded[-1]


def settle(pilot) -> object:
    return pilot.pause(0.2)


@pytest.mark.parametrize("size", [(160, 50), (80, 24)], ids=["160x50", "80x24"])
def test_dashboard_layout(snap_compare, size):
    assert snap_compare(RecordedApp(), terminal_size=size, run_before=settle)


def test_dashboard_layout_with_gpus_and_many_cores(snap_compare):
    assert snap_compare(RecordedApp(gpus=True, cores=16), terminal_size=(160, 50),
                        run_before=settle)


def test_dashboard_layout_before_the_first_snapshot(snap_compare):
    assert snap_compare(RecordedApp(frames=1), terminal_size=(120, 36), run_before=settle)


def test_dashboard_layout_on_a_ray_cluster(snap_compare):
    """Each node's cores under its name; a node column in Processes."""
    assert snap_compare(RecordedApp(cluster=True), terminal_size=(160, 50), run_before=settle)
