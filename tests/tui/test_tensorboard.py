"""The `t` key's child: TensorBoard on 127.0.0.1 at a free port, stopped on request. A tiny
HTTP server stands in for TensorBoard (which takes seconds to start)."""

from __future__ import annotations

import sys
import time
import urllib.request

from d3q_tui.tensorboard import TensorBoardProcess, tensorboard_command


def test_tensorboard_listens_on_localhost_and_stops(tmp_path):
    log = tmp_path / "tensorboard.log"
    tb = TensorBoardProcess(tmp_path / "tb", log_path=log, command=[
        sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1",
        "--directory", str(tmp_path)])
    assert tb.url == f"http://127.0.0.1:{tb.port}/"
    tb.start()
    try:
        assert tb.pid and tb.is_alive()
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(tb.url, timeout=1) as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
    finally:
        tb.stop()
    assert not tb.is_alive()
    tb.stop()  # twice is harmless


def test_the_real_command_binds_to_localhost(tmp_path):
    cmd = tensorboard_command(tmp_path / "tb", 6123)
    assert cmd[1:3] == ["-m", "tensorboard.main"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "6123"
    assert cmd[cmd.index("--logdir") + 1] == str(tmp_path / "tb")
