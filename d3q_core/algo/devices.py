"""Which devices the learner trains on, as a tf.distribute strategy.

"auto" takes every visible GPU, else the CPU; "cpu:N" splits the CPU into N logical devices
(to show and test the multi-device mechanism without GPUs); "gpu:0,1" picks GPUs.
"""

from __future__ import annotations

import tensorflow as tf


class DeviceError(ValueError):
    """learner.devices names devices this machine does not have; one line."""


def configure_threads(n: int) -> None:
    """TF's thread pools; must run before the runtime initializes."""
    if n > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(min(n, 2))
        except RuntimeError:
            pass  # already initialized (tests): keep what is there


def _logical_cpus(n: int) -> list[str]:
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        pass  # runtime already up: use what exists if it is enough
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < n:
        raise DeviceError(
            f"learner.devices = 'cpu:{n}': TensorFlow already started with "
            f"{len(logical)} CPU device(s); logical devices must be set before it starts"
        )
    return [d.name for d in logical[:n]]


def resolve_devices(devices: str) -> list[str]:
    gpus = tf.config.list_physical_devices("GPU")
    if devices == "auto":
        devices = "gpu" if gpus else "cpu"
    if devices == "cpu":
        return ["/cpu:0"]
    if devices.startswith("cpu:"):
        return _logical_cpus(int(devices.split(":")[1]))
    if not gpus:
        raise DeviceError(f"learner.devices = {devices!r}: no GPU is visible to TensorFlow")
    if devices == "gpu":
        return [f"/gpu:{i}" for i in range(len(tf.config.list_logical_devices("GPU")))]
    chosen = [int(i) for i in devices.split(":")[1].split(",")]
    n = len(tf.config.list_logical_devices("GPU"))
    missing = [i for i in chosen if i >= n]
    if missing:
        raise DeviceError(f"learner.devices = {devices!r}: no GPU {missing[0]} "
                          f"(this machine has {n})")
    return [f"/gpu:{i}" for i in chosen]


def make_strategy(devices: str) -> tuple[tf.distribute.Strategy, list[str]]:
    names = resolve_devices(devices)
    if len(names) == 1:
        return tf.distribute.OneDeviceStrategy(names[0]), names
    if all("cpu" in n.lower() for n in names):
        ops = tf.distribute.ReductionToOneDevice()
    else:
        ops = None  # NCCL all-reduce on GPUs
    return tf.distribute.MirroredStrategy(devices=names, cross_device_ops=ops), names


def device_memory(devices: list[str]) -> list[int | None]:
    """Bytes TensorFlow holds per device (GPUs only)."""
    out: list[int | None] = []
    for name in devices:
        if "gpu" in name.lower():
            try:
                out.append(int(tf.config.experimental.get_memory_info(
                    name.replace("/gpu:", "GPU:"))["current"]))
            except (ValueError, RuntimeError):
                out.append(None)
        else:
            out.append(None)
    return out
