"""The run's hub on a Ray cluster (no Ray needed: RunHub is a plain class until Ray hosts
it): which sync hands parameters back, and the run's link keeps every event a sync brings."""

from __future__ import annotations

from types import SimpleNamespace

from d3q_core.backends.ray.hub import LinkUpdate, RunHub
from d3q_core.backends.ray.link import HubLink
from d3q_core.roles.messages import Envelope, Log, ParamMeta


def _published(hub: RunHub, version: int) -> tuple[ParamMeta, list]:
    params = (ParamMeta(version, 100 * version, 10 * version, 0), [f"ref {version}"])
    hub.sync(LinkUpdate("learner", params=params))
    return params


def test_parameters_come_back_only_to_a_reader_that_holds_an_older_version():
    hub = RunHub()
    assert hub.sync(LinkUpdate("simulator", params_after=0)).params is None  # none yet
    v3 = _published(hub, 3)
    assert hub.sync(LinkUpdate("simulator", params_after=0)).params == v3
    assert hub.sync(LinkUpdate("simulator", params_after=3)).params is None  # has it
    v4 = _published(hub, 4)
    assert hub.sync(LinkUpdate("evaluator", params_after=3)).params == v4
    # the learner, the replay and the run (until a preview reads them) never get any
    assert hub.sync(LinkUpdate("learner")).params is None
    assert hub.sync(LinkUpdate("replay")).params is None
    assert hub.sync(LinkUpdate("run")).params is None


def test_an_older_version_published_late_does_not_replace_the_newest():
    hub = RunHub()
    v5 = _published(hub, 5)
    _published(hub, 4)
    assert hub.sync(LinkUpdate("simulator", params_after=0)).params == v5


class _Direct:
    """A RunHub in this process, called the way HubLink calls its actor (`ray.get` of a
    `.remote(...)` is patched to pass the answer straight through)."""

    def __init__(self, hub: RunHub):
        self.sync = SimpleNamespace(remote=hub.sync)


def test_events_a_flags_sync_brings_reach_the_run(monkeypatch):
    """At the goal the run stops the simulators (a flag: one sync) a few ms after it read
    the goal's evaluation; the evaluator's confirmation, in the hub by then, came back with
    that sync and was dropped (about once in 20 Ray runs)."""
    from d3q_core.backends.ray import link as link_module

    monkeypatch.setattr(link_module.ray, "get", lambda answer, timeout=None: answer)
    hub = RunHub()
    run = HubLink(_Direct(hub), "run")
    confirmed = Envelope("evaluator", 0, Log("info", "confirmed"))
    hub.sync(LinkUpdate("evaluator", events=[confirmed]))
    run.set_flag("stop_sims", True)  # the run's link syncs at once: the event comes along
    assert hub.sync(LinkUpdate("run")).events == []  # the hub handed it over once
    assert run.take_events() == [confirmed]
    assert run.take_events() == []
