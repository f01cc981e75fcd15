"""Telemetry on a Ray cluster: the run's own node sampled here, every other node that hosts
a role by one small actor there (psutil and NVML, as on one machine).

The faces ask a few times a second; a node's answer is asked for and used on the next look
(one Snapshot late), so a slow or lost node never holds up the run's loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from d3q_core.snapshot import DeviceStats, NodeDevices
from d3q_core.telemetry import DeviceSampler, ProcessSampler

Key = tuple[str, int]


class NodeTelemetry:
    """One per node that hosts a role (an actor with no CPU of its own)."""

    def __init__(self) -> None:
        self.devices = DeviceSampler()
        self.procs = ProcessSampler()

    def sample(self, pids: dict[Key, int]) -> tuple[DeviceStats, dict[Key, tuple[float, int]]]:
        return self.devices.sample(), self.procs.sample(pids)

    def total_memory(self, pids: list[int]) -> int:
        return ProcessSampler.total_memory(pids)


class RayTelemetry:
    here = "head"

    def __init__(self, nodes: dict[str, str]):
        self.nodes = nodes  # node id -> name (shared with the backend)
        self._devices = DeviceSampler()
        self._procs = ProcessSampler()
        self._actors: dict[str, Any] = {}  # node name -> its NodeTelemetry
        self._asked: dict[str, Any] = {}  # node name -> the sample call in flight
        self._answers: dict[str, tuple[DeviceStats, dict[Key, tuple[float, int]]]] = {}
        self._pids: dict[str, dict[Key, int]] = {}  # node name -> the pids last asked about

    def _actor(self, name: str) -> Any:
        if name not in self._actors:
            node_id = next((i for i, n in self.nodes.items() if n == name), None)
            if node_id is None:
                return None
            self._actors[name] = ray.remote(NodeTelemetry).options(
                num_cpus=0, max_restarts=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote()
        return self._actors[name]

    def _poll(self) -> None:
        """Collect the answers that came, ask each remote node again."""
        for name, ref in list(self._asked.items()):
            done, _ = ray.wait([ref], timeout=0)
            if done:
                del self._asked[name]
                try:
                    self._answers[name] = ray.get(ref)
                except ray.exceptions.RayError:  # the node or its actor has gone (or broke:
                    self._answers.pop(name, None)  # then it goes, a new one is asked next)
                    with contextlib.suppress(Exception):
                        ray.kill(self._actors.pop(name), no_restart=True)
        for name, pids in self._pids.items():
            actor = self._actor(name)
            if actor is not None and name not in self._asked:
                self._asked[name] = actor.sample.remote(pids)

    def devices(self, learner_devices: tuple[str, ...] = ()) -> DeviceStats:
        mine = self._devices.sample(learner_devices=learner_devices)
        others = tuple(NodeDevices(name, d.cpu_percent, d.gpus, d.gpu_note)
                       for name, (d, _) in sorted(self._answers.items()) if name in self._pids)
        return DeviceStats(mine.cpu_percent, mine.gpus, mine.gpu_note, mine.learner_devices,
                           mine.learner_device_memory, node=self.here, nodes=others)

    def processes(self, pids: Mapping[Key, int], nodes: Mapping[Key, str] | None = None,
                  ) -> dict[Key, tuple[float, int]]:
        nodes = nodes or {}
        local = {k: p for k, p in pids.items() if nodes.get(k, self.here) == self.here}
        remote: dict[str, dict[Key, int]] = {}
        for k, p in pids.items():
            if k not in local and nodes.get(k) not in (None, "?"):
                remote.setdefault(nodes[k], {})[k] = p
        self._pids = remote
        self._poll()
        out = self._procs.sample(local)
        for name in remote:
            out.update(self._answers.get(name, (None, {}))[1])
        return out

    def total_memory(self, pids: list[int]) -> int:
        """The run's own node only (a remote node's memory is shown per process)."""
        return ProcessSampler.total_memory(pids)

    def close(self) -> None:
        for actor in self._actors.values():
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self._actors.clear()
