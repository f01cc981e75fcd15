"""Load sampling: per-core CPU, GPUs through (fake) NVML, per-process CPU and memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types

import psutil
import pytest

from d3q_core import telemetry
from d3q_core.snapshot import GpuStats
from d3q_core.telemetry import DeviceSampler, ProcessSampler


def test_cpu_percent_has_one_entry_per_core():
    sampler = DeviceSampler()
    time.sleep(0.05)
    stats = sampler.sample(learner_devices=("/cpu:0",), learner_device_memory=(123,))
    assert len(stats.cpu_percent) == psutil.cpu_count()
    assert all(0.0 <= p <= 100.0 for p in stats.cpu_percent)
    assert stats.learner_devices == ("/cpu:0",) and stats.learner_device_memory == (123,)
    if not stats.gpus:  # this machine has no GPU; a GPU machine gives rows and its driver
        assert stats.gpu_note == "no GPU" or stats.gpu_note.startswith("NVML: ")
    else:
        assert stats.gpu_note.startswith("driver ")
    sampler.close()


class FakeNVMLError(Exception):
    def __init__(self, value: int):
        super().__init__(f"fake NVML error {value}")
        self.value = value


def fake_nvml(n_gpus: int = 2, fail_temp_on: int | None = None) -> types.ModuleType:
    """A module shaped like pynvml (nvidia-ml-py) with n_gpus GPUs."""
    nv = types.ModuleType("pynvml")
    nv.NVMLError = FakeNVMLError
    nv.NVML_ERROR_LIBRARY_NOT_FOUND = 12
    nv.NVML_ERROR_DRIVER_NOT_LOADED = 9
    nv.NVML_ERROR_GPU_IS_LOST = 15
    nv.NVML_TEMPERATURE_GPU = 0
    nv.calls = {"init": 0, "shutdown": 0}
    nv.lost = False

    def init():
        nv.calls["init"] += 1

    def shutdown():
        nv.calls["shutdown"] += 1

    def handle(i):
        return ("handle", i)

    def check(h):
        if nv.lost:
            raise FakeNVMLError(nv.NVML_ERROR_GPU_IS_LOST)

    def memory(h):
        check(h)
        return types.SimpleNamespace(used=(h[1] + 1) * 2**30, total=80 * 2**30, free=0)

    def util(h):
        check(h)
        return types.SimpleNamespace(gpu=50.0 + h[1], memory=10.0)

    def temp(h, sensor):
        assert sensor == 0
        if h[1] == fail_temp_on:
            raise FakeNVMLError(3)  # NOT_SUPPORTED
        return 40 + h[1]

    nv.nvmlInit = init
    nv.nvmlShutdown = shutdown
    nv.nvmlDeviceGetCount = lambda: n_gpus
    nv.nvmlDeviceGetHandleByIndex = handle
    nv.nvmlDeviceGetName = lambda h: f"NVIDIA H100 80GB HBM3 #{h[1]}".encode()
    nv.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    nv.nvmlDeviceGetMemoryInfo = memory
    nv.nvmlDeviceGetUtilizationRates = util
    nv.nvmlDeviceGetTemperature = temp
    nv.nvmlDeviceGetPowerUsage = lambda h: 300_000 + 1_000 * h[1]  # milliwatts
    return nv


def test_fake_nvml_with_two_gpus(monkeypatch):
    nv = fake_nvml(2, fail_temp_on=1)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    sampler = DeviceSampler()
    stats = sampler.sample()
    assert stats.gpus == (
        GpuStats(0, "NVIDIA H100 80GB HBM3 #0", 50.0, 2**30, 80 * 2**30, 40.0, 300.0),
        GpuStats(1, "NVIDIA H100 80GB HBM3 #1", 51.0, 2 * 2**30, 80 * 2**30, None, 301.0),
    )
    assert stats.gpu_note == "driver 550.54.15"
    sampler.sample()
    assert nv.calls["init"] == 1  # once, not per sample
    nv.lost = True  # the driver goes away mid-run: no rows, no exception, a note
    lost = sampler.sample()
    assert lost.gpus == () and lost.gpu_note.startswith("NVML: ")
    nv.lost = False
    assert len(sampler.sample().gpus) == 2 and sampler.note == "driver 550.54.15"
    sampler.close()
    assert nv.calls["shutdown"] == 1


@pytest.mark.parametrize("driver", [False, True])
@pytest.mark.parametrize("code", [12, 9, 999])
def test_failing_nvml_means_no_gpu_rows(monkeypatch, code, driver):
    nv = fake_nvml(2)

    def broken_init():
        raise FakeNVMLError(code)

    nv.nvmlInit = broken_init
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.setattr(telemetry, "_driver_present", lambda: driver)
    stats = DeviceSampler().sample()
    assert stats.gpus == ()
    assert len(stats.cpu_percent) == psutil.cpu_count()
    if code == 999 and driver:  # a real failure is named only where a driver is present
        assert stats.gpu_note == "NVML: fake NVML error 999"
    else:  # no library, no driver: simply no GPU
        assert stats.gpu_note == "no GPU"


def test_real_pynvml_raising_and_missing_library(monkeypatch):
    import pynvml

    def boom():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)

    monkeypatch.setattr(pynvml, "nvmlInit", boom)
    stats = DeviceSampler().sample()
    assert stats.gpus == () and (stats.gpu_note == "no GPU" or stats.gpu_note.startswith("NVML"))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    stats = DeviceSampler().sample()
    assert stats.gpus == () and stats.gpu_note == "no GPU"


def test_zero_gpus_is_no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(0))
    stats = DeviceSampler().sample()
    assert stats.gpus == () and stats.gpu_note == "no GPU"


def test_process_sampler_follows_a_busy_child_until_it_exits():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        sampler = ProcessSampler()
        keys = {("simulator", 0): child.pid, ("orchestrator", 0): os.getpid(),
                ("ghost", 0): 2**22 + 12345}
        first = sampler.sample(keys)
        assert first[("ghost", 0)] == (0.0, 0)
        assert first[("simulator", 0)][1] > 0  # RSS at once; CPU needs an interval
        cpu = 0.0
        deadline = time.monotonic() + 5.0
        while cpu < 20.0 and time.monotonic() < deadline:  # other tests may share the cores
            time.sleep(0.3)
            cpu, rss = sampler.sample(keys)[("simulator", 0)]
            assert rss > 0
        assert cpu >= 20.0, cpu
        assert sampler.total_memory(keys) > 0
        assert sampler.total_memory([child.pid]) <= sampler.total_memory(keys)
    finally:
        child.kill()
        child.wait()
    assert sampler.sample(keys)[("simulator", 0)] == (0.0, 0)
    assert child.pid not in sampler._procs  # gone pids are dropped
    assert sampler.total_memory([child.pid]) == 0
    sampler.sample({"me": os.getpid()})
    assert set(sampler._procs) == {os.getpid()}  # pids no longer asked about are forgotten


def test_zombie_reads_as_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        sampler = ProcessSampler()
        deadline = time.monotonic() + 5.0
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert sampler.sample({"c": child.pid}) == {"c": (0.0, 0)}
    finally:
        child.wait()
