"""The run's hub on a Ray cluster (no Ray needed: RunHub is a plain class until Ray hosts
it): which sync hands parameters back."""

from __future__ import annotations

from d3q_core.backends.ray.hub import LinkUpdate, RunHub
from d3q_core.roles.messages import ParamMeta


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
