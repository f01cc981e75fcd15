"""A closed terminal (SIGHUP from the kernel when the pty's master closes) stops the
dashboard's run gracefully and leaves no process behind, d3q-tui itself included."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import termios
import time

import pytest

from tests.helpers import REPO, TINY, Watched, child_env, d3q_command


@pytest.mark.timeout(150)
def test_closing_the_terminal_stops_the_run_and_every_process(tmp_path):
    run_dir = tmp_path / "run"
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x32\x00\xa0\x00\x00\x00\x00\x00")  # 50x160

    def own_terminal() -> None:  # in the child: a session whose controlling tty is the pty
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        d3q_command("--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000"),
        cwd=REPO, env={**child_env(), "TERM": "xterm-256color"}, stdin=slave, stdout=slave,
        stderr=slave, preexec_fn=own_terminal, close_fds=True)
    os.close(slave)
    w = Watched.__new__(Watched)  # only its process-tree bookkeeping
    w.proc, w.seen = proc, {}
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            w.poll_children()
            try:
                os.read(master, 65536)  # keep the pty drained, as a terminal does
            except OSError:
                break
            log = run_dir / "log.txt"
            if log.is_file() and "new best eval" in log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        else:
            pytest.fail("no evaluation within 90 s")
    finally:
        os.close(master)  # the terminal closes: the kernel hangs up the session
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        w.kill_all()
        pytest.fail("d3q-tui did not leave after its terminal closed")
    assert code == 130
    assert w.survivors() == []
    result = json.loads((run_dir / "result.json").read_text())
    assert result["stop_reason"] == "interrupted" and result["exit_code"] == 130
