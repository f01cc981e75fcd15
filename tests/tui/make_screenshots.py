"""Save SVG screenshots of the dashboard.

    python -m tests.tui.make_screenshots [OUT_DIR]                 # recorded Snapshots
    python -m tests.tui.make_screenshots --live 12 [OUT_DIR] [--set k=v ...]
                                                                   # a real run, 12 s in

Recorded: the fake run's Snapshots at 160x50, 80x24 and with GPUs (no training, 2 s).
Live: a real CartPole run under the headless driver, pictured after the given seconds at
160x50 (tui.svg), then stopped gracefully. Default OUT_DIR: assets/.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.tui.test_layout import RecordedApp

SIZE = (160, 50)


async def save_recorded(path: Path, size: tuple[int, int], gpus: bool = False) -> None:
    app = RecordedApp(gpus=gpus, cores=16 if gpus else 2)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        app.save_screenshot(filename=path.name, path=str(path.parent))


async def save_live(path: Path, seconds: float, overrides: list[str]) -> int:
    """A real run (the learner in its own process, as always) pictured mid-run."""
    from d3q_core.config import build_config
    from d3q_core.run.orchestrator import Orchestrator
    from d3q_tui.app import D3QApp

    with tempfile.TemporaryDirectory(prefix="d3q-shot-") as tmp:
        orch = Orchestrator(build_config(None, overrides), run_dir=Path(tmp) / "run")
        app = D3QApp(orch)
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not app.finished:
                await pilot.pause(0.25)
            await pilot.pause(0.3)
            app.save_screenshot(filename=path.name, path=str(path.parent))
            await pilot.press("q")
            while app.is_running:
                await pilot.pause(0.2)
                if app.finished:
                    await pilot.press("q")
        return app.exit_code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", default="assets", type=Path)
    p.add_argument("--live", type=float, metavar="SECONDS", help="picture a real run")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="K=V")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.live is not None:
        path = args.out / "tui.svg"
        asyncio.run(save_live(path, args.live, args.overrides))
        print(path)
        return 0
    for name, size, gpus in (("tui-recorded.svg", SIZE, False),
                             ("tui-80x24.svg", (80, 24), False),
                             ("tui-gpus.svg", SIZE, True)):
        asyncio.run(save_recorded(args.out / name, size, gpus=gpus))
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
