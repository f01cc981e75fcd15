"""Device and process load sampling for the Snapshot: per-core CPU (psutil), GPUs through
NVML when a driver is present, CPU % and memory of every d3q process. Called a few times a
second by the orchestrator, never in a hot loop."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable

import psutil

from d3q_core.snapshot import DeviceStats, GpuStats


class DeviceSampler:
    def __init__(self) -> None:
        psutil.cpu_percent(percpu=True)  # prime: the first call has no interval to measure
        self._nvml = None
        self._handles: list = []
        self.note = "no GPU"
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nvml = pynvml
            if count:
                driver = pynvml.nvmlSystemGetDriverVersion()
                if isinstance(driver, bytes):
                    driver = driver.decode()
                self.note = f"driver {driver}"
        except Exception:  # noqa: BLE001 - no library, no driver, or a failing one: no GPU rows
            self._nvml, self._handles = None, []

    def _gpu(self, i: int, h) -> GpuStats | None:
        nv = self._nvml
        try:
            name = nv.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else name
            util = nv.nvmlDeviceGetUtilizationRates(h).gpu
            mem = nv.nvmlDeviceGetMemoryInfo(h)
        except Exception:  # noqa: BLE001
            return None
        temp = power = None
        with contextlib.suppress(Exception):
            temp = float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
        with contextlib.suppress(Exception):
            power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
        return GpuStats(i, str(name), float(util), int(mem.used), int(mem.total), temp, power)

    def sample(self, learner_devices: tuple[str, ...] = (),
               learner_device_memory: tuple[int, ...] = ()) -> DeviceStats:
        gpus = tuple(g for i, h in enumerate(self._handles) if (g := self._gpu(i, h)) is not None)
        return DeviceStats(
            cpu_percent=tuple(psutil.cpu_percent(percpu=True)),
            gpus=gpus,
            gpu_note=self.note,
            learner_devices=learner_devices,
            learner_device_memory=learner_device_memory,
        )


class ProcessSampler:
    """CPU % and RSS per process; psutil needs the same Process object between calls."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def _proc(self, pid: int) -> psutil.Process:
        p = self._procs.get(pid)
        if p is None:
            p = psutil.Process(pid)
            p.cpu_percent(None)
            self._procs[pid] = p
        return p

    def sample(self, pids: dict[Hashable, int]) -> dict[Hashable, tuple[float, int]]:
        out: dict[Hashable, tuple[float, int]] = {}
        for key, pid in pids.items():
            try:
                p = self._proc(pid)
                out[key] = (p.cpu_percent(None), p.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
                out[key] = (0.0, 0)
        live = set(pids.values())
        for pid in list(self._procs):
            if pid not in live:
                del self._procs[pid]
        return out

    @staticmethod
    def total_memory(pids: list[int]) -> int:
        """PSS where the system gives it (shared pages counted once), else RSS."""
        total = 0
        for pid in pids:
            try:
                p = psutil.Process(pid)
                try:
                    total += p.memory_full_info().pss
                except (AttributeError, psutil.AccessDenied):
                    total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total
