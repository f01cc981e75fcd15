"""Device and process load for the Snapshot: per-core CPU (psutil), GPUs through NVML when a
driver is present, CPU % and memory of every d3q process. The orchestrator calls these a few
times a second, so each sample is a handful of cheap reads and never blocks."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

import psutil

from d3q_core.snapshot import DeviceStats, GpuStats

K = TypeVar("K", bound=Hashable)

NO_GPU = "no GPU"


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _driver_present() -> bool:
    """An NVIDIA kernel driver is loaded: then an NVML failure is worth reporting."""
    return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidiactl")


def _nvml_note(nv: Any, exc: BaseException) -> str:
    """`no GPU` when there is simply none (no library, no driver), else `NVML: <reason>`."""
    quiet = {getattr(nv, n, None) for n in ("NVML_ERROR_LIBRARY_NOT_FOUND",
                                            "NVML_ERROR_DRIVER_NOT_LOADED")} - {None}
    if getattr(exc, "value", None) in quiet or not _driver_present():
        return NO_GPU
    reason = (str(exc).splitlines() or [""])[0] or exc.__class__.__name__
    return f"NVML: {reason[:60]}"


class DeviceSampler:
    """Per-core CPU percent since the previous sample, and each GPU's load through NVML.
    Without the library, a driver or working GPUs there are no GPU rows, never an error."""

    def __init__(self) -> None:
        psutil.cpu_percent(percpu=True)  # prime: the first call has no interval to measure
        self._nvml: Any = None
        self._gpus: list[tuple[int, Any, str]] = []  # (index, handle, name)
        self.note = self._ok_note = NO_GPU
        self._init_nvml()

    def _init_nvml(self) -> None:
        try:
            import pynvml as nv
        except Exception:  # not installed (or broken): simply no GPU rows
            return
        try:
            nv.nvmlInit()
        except Exception as exc:
            self.note = _nvml_note(nv, exc)
            return
        try:
            gpus = []
            for i in range(int(nv.nvmlDeviceGetCount())):
                handle = nv.nvmlDeviceGetHandleByIndex(i)
                gpus.append((i, handle, _text(nv.nvmlDeviceGetName(handle))))
            if gpus:
                driver = ""
                with contextlib.suppress(Exception):
                    driver = _text(nv.nvmlSystemGetDriverVersion())
                self.note = self._ok_note = f"driver {driver}" if driver else "NVML"
        except Exception as exc:
            self.note = _nvml_note(nv, exc)
            with contextlib.suppress(Exception):
                nv.nvmlShutdown()
            return
        if gpus:
            self._nvml, self._gpus = nv, gpus
        else:
            with contextlib.suppress(Exception):
                nv.nvmlShutdown()

    def _gpu(self, index: int, handle: Any, name: str) -> GpuStats:
        """One GPU; a reading the device does not support (utilization under MIG, power on
        some boards) is 0 or None rather than dropping the row."""
        nv = self._nvml
        mem = nv.nvmlDeviceGetMemoryInfo(handle)  # the row is worthless without it: may raise
        util = 0.0
        with contextlib.suppress(Exception):
            util = float(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
        temp = power = None
        with contextlib.suppress(Exception):
            temp = float(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
        with contextlib.suppress(Exception):
            power = nv.nvmlDeviceGetPowerUsage(handle) / 1000.0  # milliwatts
        return GpuStats(index, name, util, int(mem.used), int(mem.total), temp, power)

    def _sample_gpus(self) -> tuple[GpuStats, ...]:
        if self._nvml is None:
            return ()
        try:
            gpus = tuple(self._gpu(i, h, name) for i, h, name in self._gpus)
        except Exception as exc:  # a GPU fell off the bus, the driver went away, ...
            self.note = f"NVML: {(str(exc) or exc.__class__.__name__)[:60]}"
            return ()
        self.note = self._ok_note
        return gpus

    def sample(self, learner_devices: tuple[str, ...] = (),
               learner_device_memory: tuple[int, ...] = ()) -> DeviceStats:
        gpus = self._sample_gpus()
        return DeviceStats(
            cpu_percent=tuple(float(p) for p in psutil.cpu_percent(percpu=True)),
            gpus=gpus,
            gpu_note=self.note,
            learner_devices=tuple(learner_devices),
            learner_device_memory=tuple(int(m) for m in learner_device_memory),
        )

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml, self._gpus = None, []


class ProcessSampler:
    """CPU percent (since this sampler's previous look at the pid) and RSS per process.
    psutil measures CPU percent between two calls on the same Process object, so those are
    kept per pid; a pid that is gone, or reused by another process, reads (0.0, 0)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def _read(self, pid: int) -> tuple[float, int]:
        p = self._procs.get(pid)
        fresh = p is None
        if p is None:
            p = psutil.Process(pid)
            self._procs[pid] = p
        elif not p.is_running():  # the pid now belongs to another process
            raise psutil.NoSuchProcess(pid)
        with p.oneshot():
            if p.status() == psutil.STATUS_ZOMBIE:
                raise psutil.NoSuchProcess(pid)
            cpu = p.cpu_percent(None)
            rss = p.memory_info().rss
        return (0.0 if fresh else float(cpu)), int(rss)

    def sample(self, pids: Mapping[K, int]) -> dict[K, tuple[float, int]]:
        """{key: (cpu_percent, rss_bytes)} for {key: pid}; pids no longer asked about are
        forgotten. The first look at a pid reports 0 % (no interval yet)."""
        out: dict[K, tuple[float, int]] = {}
        for key, pid in pids.items():
            try:
                out[key] = self._read(int(pid))
            except (psutil.Error, OSError, ValueError):
                self._procs.pop(int(pid), None)
                out[key] = (0.0, 0)
        live = {int(p) for p in pids.values()}
        for pid in [p for p in self._procs if p not in live]:
            del self._procs[pid]
        return out

    @staticmethod
    def total_memory(pids: Mapping[Any, int] | Iterable[int]) -> int:
        """Bytes used by these processes together: PSS where the system gives it (shared
        pages counted once across processes), else RSS. Costs more than `sample` (it reads
        smaps), so call it at most about once a second."""
        values = pids.values() if isinstance(pids, Mapping) else pids
        total = 0
        for pid in set(values):
            try:
                p = psutil.Process(int(pid))
                try:
                    pss = getattr(p.memory_full_info(), "pss", None)
                except (psutil.AccessDenied, NotImplementedError, AttributeError):
                    pss = None
                total += int(pss) if pss is not None else int(p.memory_info().rss)
            except (psutil.Error, OSError):
                continue
        return total
