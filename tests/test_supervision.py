"""The supervision policy over a fake backend: the run's side of the seam needs no process."""

from __future__ import annotations

from dataclasses import dataclass, field

from d3q_core.config import StopConfig
from d3q_core.run.backend import Backend, RoleHandle, RoleRecipe
from d3q_core.run.supervision import Supervisor


@dataclass
class FakeHandle:
    role: str
    index: int
    incarnation: int
    alive: bool = True
    code: int | None = None

    pid = None
    node = "fake"

    @property
    def exitcode(self) -> int | None:
        return self.code

    def is_alive(self) -> bool:
        return self.alive

    def die(self, code: int) -> None:
        self.alive, self.code = False, code

    def kill(self) -> None:
        self.die(-9)

    def join(self, timeout: float | None = None) -> None:
        pass


@dataclass
class FakeBackend:
    started: list[FakeHandle] = field(default_factory=list)

    def start(self, recipe: RoleRecipe) -> FakeHandle:
        handle = FakeHandle(recipe.role, recipe.index, recipe.incarnation)
        self.started.append(handle)
        return handle


def recipe(role: str, index: int = 0, incarnation: int = 0) -> RoleRecipe:
    return RoleRecipe(role, index, incarnation, make=lambda: None)


def supervisor(limit: int = 5) -> tuple[Supervisor, FakeBackend, list]:
    backend, logs = FakeBackend(), []
    sup = Supervisor(backend, StopConfig(max_restarts_per_minute=limit),  # type: ignore[arg-type]
                     recipe, lambda text, level: logs.append((level, text)))
    for r in (recipe("learner"), recipe("replay"), recipe("simulator", 0),
              recipe("simulator", 1)):
        sup.start(r)
    return sup, backend, logs


def never(_role: str) -> bool:
    return False


def test_the_local_handle_and_the_fake_satisfy_the_role_handle_protocol():
    import types

    from d3q_core.backends.local.backend import LocalHandle

    process = types.SimpleNamespace(pid=1, exitcode=None)
    assert isinstance(FakeHandle("x", 0, 0), RoleHandle)
    assert isinstance(LocalHandle("x", 0, 0, process=process), RoleHandle)


def test_living_roles_become_running_and_nothing_is_fatal():
    sup, _, _ = supervisor()
    assert sup.check(never, restarts_allowed=lambda role: True) is None
    assert {c.state for c in sup} == {"running"}


def test_a_dead_simulator_comes_back_as_its_next_incarnation_with_the_same_index():
    sup, backend, logs = supervisor()
    sup.find("simulator", 1).handle.die(-9)
    assert sup.check(never, restarts_allowed=lambda role: True) is None
    child = sup.find("simulator", 1)
    assert (child.handle.index, child.handle.incarnation, child.restarts) == (1, 1, 1)
    assert child.state == "restarting" and backend.started[-1] is child.handle
    assert logs[-1][0] == "warning"


def test_restarts_beyond_the_limit_end_the_run():
    sup, _, _ = supervisor(limit=2)
    fatal = None
    for _ in range(3):
        sup.find("simulator", 0).handle.die(1)
        fatal = sup.check(never, restarts_allowed=lambda role: True)
    assert fatal is not None and "3 times within a minute" in fatal
    assert sup.find("simulator", 0).state == "failed"


def test_a_dead_learner_or_replay_ends_the_run_and_a_told_one_just_exits():
    sup, backend, _ = supervisor()
    sup.find("replay").handle.die(1)
    fatal = sup.check(never, restarts_allowed=lambda role: True)
    assert fatal is not None and fatal.startswith("replay")
    assert sup.find("replay").state == "failed" and len(backend.started) == 4
    sup.find("learner").handle.die(0)
    assert sup.check(lambda role: role == "learner", restarts_allowed=lambda role: True) is None
    assert sup.find("learner").state == "exited"


def test_no_restart_while_the_simulators_are_told_to_stop():
    sup, backend, _ = supervisor()
    sup.find("simulator", 0).handle.die(-9)
    assert sup.check(never, restarts_allowed=lambda role: False) is not None
    assert len(backend.started) == 4


def test_the_local_backend_satisfies_the_backend_protocol():
    from d3q_core.algo.qnet import QNetSpec
    from d3q_core.backends.local.backend import LocalBackend
    from d3q_core.config import Config

    backend = LocalBackend(Config(), QNetSpec(4, 2, (8,), True), 2)
    try:
        assert isinstance(backend, Backend)
        assert backend.events(timeout=0.01) == []
        assert backend.counters.env_steps == 0 and backend.params.read() is None
    finally:
        backend.close()


def test_a_half_written_event_from_a_dead_child_never_blocks_the_run():
    """Each incarnation has its own events pipe whose only write end it holds: a message cut
    short by a kill reads as EOF, and the other roles' messages still arrive."""
    import multiprocessing as mp
    import struct
    import time

    from d3q_core.algo.qnet import QNetSpec
    from d3q_core.backends.local.backend import LocalBackend
    from d3q_core.config import Config
    from d3q_core.roles.messages import Envelope, Log

    backend = LocalBackend(Config(), QNetSpec(4, 2, (8,), True), 1)
    try:
        dead_r, dead_w = mp.Pipe(duplex=False)
        live_r, live_w = mp.Pipe(duplex=False)
        backend._events |= {dead_r, live_r}
        import os

        # one whole message, then half of the next, then the child "dies"
        dead_w.send(Envelope("simulator", 0, Log("info", "before the kill")))
        os.write(dead_w.fileno(), struct.pack("!i", 1000) + b"y" * 10)
        dead_w.close()
        live_w.send(Envelope("replay", 0, Log("info", "still here")))
        t0 = time.monotonic()
        got = backend.events(timeout=1.0) + backend.events(timeout=0.2)
        assert time.monotonic() - t0 < 1.5
        assert sorted(e.message.text for e in got) == ["before the kill", "still here"]
        assert dead_r not in backend._events and live_r in backend._events
        live_w.close()
        assert backend.last_events() == [] and backend._events == set()
    finally:
        backend.close()


def test_a_dead_evaluator_is_restarted_as_its_next_incarnation():
    sup, backend, _ = supervisor()
    sup.start(recipe("evaluator"))
    sup.find("evaluator").handle.die(-9)
    assert sup.check(never, restarts_allowed=lambda role: True) is None
    child = sup.find("evaluator")
    assert child.restarts == 1 and child.handle.incarnation == 1 and child.handle.is_alive()
