"""The GPU pool (no GPU needed: devices are ids, locks are files) and the container
kwargs a GPU job gets from the Docker backend (built, not run)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.backend import SandboxConfig
from sandbox.docker_images import Interpreter
from sandbox.docker_profile import DockerSettings, container_kwargs
from sandbox.gpus import GpuPool, GpuUnavailable
from sandbox.runtimes import Runtime, RuntimeRequest
from sandbox.session import SessionLimits


@pytest.fixture
def pool(tmp_path: Path) -> GpuPool:
    return GpuPool(["0"], tmp_path / "locks", poll_s=0.01)


NO_RUNTIME = Runtime(RuntimeRequest("2.0.0"), ())

def test_one_gpu_two_jobs_the_second_waits_until_the_first_releases(pool: GpuPool) -> None:
    first = pool.lease(timeout=1)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(pool.lease(timeout=5).device))
    waiter.start()
    time.sleep(0.2)
    assert got == [], "the second job got the GPU while the first held it"
    first.release()
    waiter.join(timeout=5)
    assert got == ["0"]


def test_timeout_says_how_long_it_waited(pool: GpuPool) -> None:
    with pool.acquire(timeout=1) as device:
        assert device == "0"
        started = time.monotonic()
        with pytest.raises(GpuUnavailable, match=r"busy for 0\.2 s"):
            pool.lease(timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2
    with pool.acquire(timeout=0) as device:  # released by the with block
        assert device == "0"


def test_each_job_gets_a_different_gpu_and_release_is_idempotent(tmp_path: Path) -> None:
    pool = GpuPool(["0", "1", "GPU-3b1f/x"], tmp_path, poll_s=0.01)
    leases = [pool.lease(timeout=1) for _ in range(3)]
    assert sorted(lease.device for lease in leases) == ["0", "1", "GPU-3b1f/x"]
    assert pool.try_lease() is None
    leases[1].release()
    leases[1].release()
    again = pool.lease(timeout=1)
    assert again.device == leases[1].device
    for lease in (*leases, again):
        lease.release()
    assert all(p.parent == tmp_path for p in map(pool.lock_path, pool.devices))


def test_rejects_an_empty_or_duplicated_device_list(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        GpuPool([], tmp_path)
    with pytest.raises(ValueError, match="duplicate"):
        GpuPool(["0", "0"], tmp_path)


def _hold_gpu(run_dir: str, holding: Any, release: Any) -> None:
    pool = GpuPool(["0"], Path(run_dir), poll_s=0.01)
    with pool.acquire(timeout=5):
        holding.set()
        release.wait(10)


def test_worker_processes_on_one_host_share_the_pool(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    holding, release = context.Event(), context.Event()
    worker = context.Process(target=_hold_gpu, args=(str(tmp_path), holding, release))
    worker.start()
    try:
        assert holding.wait(30), "the other process never got the GPU"
        pool = GpuPool(["0"], tmp_path, poll_s=0.01)
        with pytest.raises(GpuUnavailable):
            pool.lease(timeout=0.2)
        release.set()
        with pool.acquire(timeout=10) as device:
            assert device == "0"
    finally:
        release.set()
        worker.join(timeout=30)


def test_a_crashed_holder_gives_the_gpu_back(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    holding, release = context.Event(), context.Event()
    worker = context.Process(target=_hold_gpu, args=(str(tmp_path), holding, release))
    worker.start()
    assert holding.wait(30)
    worker.kill()
    worker.join(timeout=30)
    with GpuPool(["0"], tmp_path, poll_s=0.01).acquire(timeout=5) as device:
        assert device == "0"


# -- what a GPU job's container gets (pure function: no engine, no GPU) -------------


def gpu_kwargs(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    config = SandboxConfig(submission_dir=tmp_path)
    return container_kwargs(config, SessionLimits(), DockerSettings(**settings),
                            Interpreter("/usr/bin/python3"), token="t", channel=tmp_path, gpu="1",
                            runtime=NO_RUNTIME)


def test_nvidia_mode_requests_exactly_that_gpu(tmp_path: Path) -> None:
    kwargs = gpu_kwargs(tmp_path, gpu_mode="nvidia")
    (request,) = kwargs["device_requests"]
    assert request["DeviceIDs"] == ["1"] and request["Capabilities"] == [["gpu"]]
    assert kwargs["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] == "1"
    assert "devices" not in kwargs
    assert "CUDA_VISIBLE_DEVICES" not in kwargs["environment"]


def test_devices_mode_passes_only_that_gpus_nodes_and_a_read_only_driver(tmp_path: Path) -> None:
    kwargs = gpu_kwargs(tmp_path, gpu_mode="devices", driver_mounts=("/usr/local/nvidia",))
    assert kwargs["devices"] == ["/dev/nvidia1:/dev/nvidia1:rw",
                                 "/dev/nvidiactl:/dev/nvidiactl:rw",
                                 "/dev/nvidia-uvm:/dev/nvidia-uvm:rw"]
    driver = [m for m in kwargs["mounts"] if m["Target"] == "/usr/local/nvidia"]
    assert driver and driver[0]["ReadOnly"] is True
    assert "device_requests" not in kwargs
    assert kwargs["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert not any("uvm-tools" in d or "modeset" in d for d in kwargs["devices"])
    with pytest.raises(ValueError, match="numeric index"):
        container_kwargs(SandboxConfig(submission_dir=tmp_path), SessionLimits(),
                         DockerSettings(gpu_mode="devices"), Interpreter("python"),
                         runtime=NO_RUNTIME, token="t",
                         channel=tmp_path, gpu="GPU-3b1f")


def test_cpu_jobs_get_no_gpu_at_all(tmp_path: Path) -> None:
    kwargs = container_kwargs(SandboxConfig(submission_dir=tmp_path), SessionLimits(),
                              DockerSettings(), Interpreter("python"), token="t", channel=tmp_path,
                              runtime=NO_RUNTIME)
    assert "devices" not in kwargs and "device_requests" not in kwargs
    assert not any(k.startswith("NVIDIA") for k in kwargs["environment"])
