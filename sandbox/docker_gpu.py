"""How a container gets its one GPU (``sandbox.gpus`` decides which one).

Two modes: ``nvidia`` asks the NVIDIA container runtime for the device by a device
request; ``devices`` passes the device nodes through the device cgroup and mounts
the host's driver folders read-only. Either way the GPU is reachable through the
device cgroup, never through the environment alone.
"""

from __future__ import annotations

from typing import Any, Literal

from docker.types import DeviceRequest, Mount

GpuMode = Literal["nvidia", "devices"]


def add_gpu(options: dict[str, Any], gpu: str, mode: GpuMode,
            driver_mounts: tuple[str, ...]) -> None:
    """Give the container of ``options`` (``containers.create``'s) the GPU ``gpu``."""
    env = options["environment"]
    env["NVIDIA_DRIVER_CAPABILITIES"] = "compute,utility"
    if mode == "nvidia":
        env["NVIDIA_VISIBLE_DEVICES"] = gpu
        options["device_requests"] = [DeviceRequest(device_ids=[gpu], capabilities=[["gpu"]])]
        return
    if not gpu.isdigit():
        raise ValueError(f"GPU {gpu!r}: the devices mode needs a numeric index like '0'")
    nodes = [f"/dev/nvidia{gpu}", "/dev/nvidiactl", "/dev/nvidia-uvm"]
    options["devices"] = [f"{node}:{node}:rw" for node in nodes]
    options["mounts"] += [Mount(p, p, type="bind", read_only=True) for p in driver_mounts]
