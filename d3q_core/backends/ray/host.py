"""The host of a private Ray instance (`cluster.address = "local"`): a small process of its
own session that starts the instance, tells the run its address, and stops it when the run
says "done" on its stdin, or when that stdin ends without the word (the run has died).

Why a process of its own: an instance `ray.init` starts in the run's process would be in
the run's process group, and a Ctrl-C or a `timeout` to that group would kill Ray's raylet
before the run could lead its graceful stop (the learner's final checkpoint went with it).
In a session of its own the instance hears only the host. And the host cleans up after a
run that died: after a SIGKILL of the process that started it, Ray 2.60's dashboard agent
and runtime-env agent were still alive a minute later, so the host also notes its Ray
descendants while it runs and kills any still there after `ray.shutdown()`.

    python -m d3q_core.backends.ray.host NUM_CPUS dashboard|no-dashboard
    (stdin: a pipe from the run, "remove PATH" lines then "done"; stdout: "address HOST:PORT
    AUTH_MODE" or "error ...")
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import sys

import psutil

LOOK_SECONDS = 0.5


def _descendants() -> dict[int, float]:
    out = {}
    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return out
    for p in kids:
        try:
            out[p.pid] = p.create_time()
        except psutil.Error:
            continue
    return out


def _kill(noted: dict[int, float]) -> None:
    for pid, created in noted.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == created:
                p.kill()
        except psutil.Error:
            continue


def _without_idle_services(dashboard: bool) -> None:
    """The instance without the autoscaler's monitor (a private instance has nothing to
    scale) and the log monitor (it streams workers' output to drivers that ask for it, and
    the run does not: log_to_driver is off, each role writes to log.txt itself): two Python
    processes of ~0.6 s of CPU each at start-up on a 2-core machine, and some after. ray.init
    has no setting for either (`ray start` has --no-monitor and --include-log-monitor), so
    the defaults of the parameters it builds change (ray 2.60.0, as pinned).

    Without `cluster.include_dashboard`, no dashboard process either: Ray starts one anyway
    (its web server with the usage-stats module alone) and ray.init waits until it has
    written its address, 1.1 s of the run's start-up here (`python -m bench ray`). What it
    would serve, Ray's job and state APIs for this instance, d3q does not use; the dashboard
    agent's event module then asks for its address once a second (a line in its own log)."""
    try:
        from ray._private import node, parameter
    except ImportError:
        return
    init = parameter.RayParams.__init__

    def lean(self: object, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("no_monitor", True)
        kwargs.setdefault("include_log_monitor", False)
        init(self, *args, **kwargs)

    parameter.RayParams.__init__ = lean
    if not dashboard:
        node.Node.start_api_server = lambda self, **_: None


def main(argv: list[str]) -> int:
    # every stop signal is the run's to act on: it tells the host when it is done
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    import ray

    num_cpus = int(argv[0]) if int(argv[0]) > 0 else os.cpu_count()
    dashboard = argv[1] == "dashboard"
    _without_idle_services(dashboard)
    try:
        # workers at niceness 0 (Ray's default is 15), so that each role sets its own as on
        # one machine: the run ahead, the evaluator behind the others
        info = ray.init(address="local", num_cpus=num_cpus, include_dashboard=dashboard,
                        log_to_driver=False, logging_level=logging.ERROR,
                        _system_config={"worker_niceness": 0})
    except Exception as exc:  # noqa: BLE001 - the run reports it as one line
        print(f"error {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 1
    # the instance's auth mode: Ray 2.60 turns token auth on for an instance ray.init starts,
    # and a driver joining by explicit address uses it only if RAY_AUTH_MODE says so
    mode = os.environ.get("RAY_AUTH_MODE", "disabled")
    print(f"address {info.address_info['gcs_address']} {mode}", flush=True)
    os.dup2(2, 1)  # from here on Ray's own prints go where stderr goes (the run's log.txt)
    noted: dict[int, float] = {}
    leftovers: list[str] = []
    while True:
        noted.update(_descendants())
        if select.select([sys.stdin], [], [], LOOK_SECONDS)[0]:
            line = sys.stdin.readline()  # "done", or "" at the end of a pipe whose writer
            if line.startswith("remove "):  # has gone; "remove PATH": the run's scratch
                leftovers.append(line[len("remove "):].rstrip("\n"))
                continue
            break
    ray.shutdown()
    _kill(noted)
    for path in leftovers:  # after the roles: a SIGKILLed run never removed them itself
        shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
